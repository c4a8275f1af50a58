"""What several subcommands share: the consoles, the error line, and common options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from harness.commands import args as opt
from harness.errors import UsageError
from harness.run.sweeps import apply_point, parse_set
from harness.spec import ModelSpec, load_spec
from harness.spec.schema import DATASETS

# Piped output (files, CI logs) gets room for whole tables rather than rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

# The one thread budget (harness.measure.environment.thread_budget), as every runtime applies it.
THREADS_HELP = ("compute threads for every runtime: N intra-op, 1 inter-op (TensorFlow, "
                "PyTorch, ONNX Runtime alike; default: every core this process may use)")


def print_error(message: str) -> None:
    """`error: ...` on stderr, one line per line of `message`, never wrapped (scripts and
    logs read it), user text never taken for rich markup."""
    for line in message.splitlines() or [""]:
        err_console.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)


@contextmanager
def writing_into(folder: Path) -> Iterator[None]:
    """A command writing into `folder`: an OSError that names no file (a write to a file
    already open, on a full disk) names `folder`, so its one line says where (harness.cli)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(folder)
        raise


def add_common_data_options(parser: argparse.ArgumentParser,
                            limit_test_help: str = "use the first N test images") -> None:
    """--data-dir, --limit-test (what the command does with them: `limit_test_help`), --threads."""
    parser.add_argument("--data-dir", type=opt.data_folder,
                        help="the datasets' folder, which must exist (default: "
                             "$HARNESS_DATA_DIR or a user cache folder)")
    parser.add_argument("--limit-test", type=opt.limit("test"),
                        help=f"{limit_test_help} (default: all 10,000)")
    parser.add_argument("--threads", type=opt.threads, help=THREADS_HELP)


def add_download_option(parser: argparse.ArgumentParser) -> None:
    """--download: None unless given, harness.data's `download` (None: only into the cache)."""
    parser.add_argument("--download", action="store_const", const=True, default=None,
                        help="download missing dataset files into --data-dir or "
                             "$HARNESS_DATA_DIR too (default: only into the user cache folder)")


def add_spec_override_options(parser: argparse.ArgumentParser) -> None:
    """--set and --dataset: one spec changed as one point of `harness run --set` changes it."""
    parser.add_argument("--set", type=opt.set_override, action="append", metavar="PATH=VALUE",
                        help="override a spec field, one value (repeatable), as `harness run "
                             "--set` does: e.g. layers[0].units=64 or train.batch_size=64; the "
                             "spec is renamed <spec>--<field>-<value>")
    parser.add_argument("--dataset", choices=DATASETS,
                        help="use this dataset instead of the spec's input.dataset (as "
                             "--set input.dataset=NAME)")


def _single_point(texts: list[str]) -> dict[str, Any]:
    """{path: value} of --set options of one value each: a list of values is a grid, which
    only `harness run` expands."""
    point: dict[str, Any] = {}
    for override in map(parse_set, texts):
        if len(override.values) > 1:
            raise UsageError(f"--set {override.path}: {len(override.values)} values; one value "
                             "per field here (a list of values is a grid: `harness run --set`)")
        if override.path in point:
            raise UsageError(f"--set {override.path}: given twice; give it once")
        point[override.path] = override.values[0]
    return point


def spec_from_options(args: argparse.Namespace) -> ModelSpec | None:
    """--spec with --set and --dataset applied (validated, and named as `harness run` names a
    sweep point, so its records and hash are the overridden spec's); None without --spec."""
    point = _single_point(args.set or [])
    if args.dataset is not None:
        if "input.dataset" in point:
            raise UsageError("--dataset: --set input.dataset is given too; give one of them")
        point["input.dataset"] = args.dataset
    if args.spec is None:
        if point:
            raise UsageError(f"{'--set' if args.set else '--dataset'}: changes --spec, which is "
                             "not given (a --from run's spec is the one it trained)")
        return None
    return apply_point(load_spec(args.spec), point)


def add_framework_policy_options(parser: argparse.ArgumentParser) -> None:
    """Maths and memory layout, chosen once for every framework and recorded."""
    parser.add_argument("--tf32", action="store_true",
                        help="let float32 matmuls and convolutions round to TF32 on GPUs that "
                             "have it, in both frameworks (default: off in both; TensorFlow's "
                             "own default is on, PyTorch's off for matmuls)")
    parser.add_argument("--layout", choices=["channels_last", "nchw"], default="channels_last",
                        help="memory layout of PyTorch's CNN activations and kernels (default: "
                             "channels_last, as Keras' NHWC tensors; Keras has no choice)")


def add_variant_options(parser: argparse.ArgumentParser) -> None:
    """ONNX Runtime variants of each export and the accuracy gate (harness.latency.variants)."""
    from harness.latency.variants.catalog import ALL, DEFAULT_ACCURACY_GATE, ORT_VARIANTS

    parser.add_argument("--ort-variants", type=opt.csv(str, [ALL, *ORT_VARIANTS]), default=[],
                        help=f"ONNX Runtime variants of each export, or {ALL}: "
                             f"{', '.join(ORT_VARIANTS)}")
    parser.add_argument("--accuracy-gate", type=opt.number(0, 1),
                        default=DEFAULT_ACCURACY_GATE,
                        help="mark a variant below this fraction of the float32 model's "
                             f"accuracy `fails accuracy` (default {DEFAULT_ACCURACY_GATE})")


def add_strict_providers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict-providers", action="store_true",
                        help="record a CUDA ONNX Runtime session that would run any node on the "
                             "CPU as unavailable instead of timing it (ORT's "
                             "session.disable_cpu_ep_fallback)")
