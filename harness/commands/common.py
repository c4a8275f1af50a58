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
from harness.run import options as opts
from harness.run.options import RunOption
from harness.run.sweeps import NPZ_PATH, apply_point, parse_set
from harness.spec import ModelSpec, load_spec
from harness.spec.schema import DATASETS

# Piped output (files, CI logs) gets room for whole tables rather than rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


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


def add_run_option(parser: argparse.ArgumentParser, option: RunOption,
                   help_text: str | None = None) -> None:
    """`harness run`'s option as harness.run.options defines it (another command's help:
    `help_text`)."""
    settings: dict[str, Any] = {"help": help_text or option.help, "dest": option.dest,
                                "default": option.default_value()}
    check = opt.CHECKS[option.check]
    if option.form == opts.SWITCH:
        settings["action"] = "store_true"
    elif option.form == opts.FLAG:
        settings.update(action="store_const", const=True)
    elif option.form == opts.LIST:
        settings["type"] = opt.csv(check, option.choices)
    else:
        settings.update(type=check, choices=option.choices, metavar=option.metavar)
        if option.form == opts.REPEAT:
            settings["action"] = "append"
    parser.add_argument(option.flag, **settings)


def add_common_data_options(parser: argparse.ArgumentParser,
                            limit_test_help: str = "use the first N test images") -> None:
    """--data-dir, --limit-test (what the command does with them: `limit_test_help`), --threads."""
    add_run_option(parser, opts.BY_FIELD["data_dir"])
    add_run_option(parser, opts.BY_FIELD["limit_test"],
                   f"{limit_test_help} (default: all 10,000)")
    add_run_option(parser, opts.BY_FIELD["threads"])


def add_download_option(parser: argparse.ArgumentParser) -> None:
    """--download: None unless given, harness.data's `download` (None: only into the cache)."""
    add_run_option(parser, opts.BY_FIELD["download"])


def add_spec_override_options(parser: argparse.ArgumentParser) -> None:
    """--set, --dataset and --data: one spec changed as one point of `harness run --set`
    changes it."""
    parser.add_argument("--set", type=opt.set_override, action="append", metavar="PATH=VALUE",
                        help="override a spec field, one value (repeatable), as `harness run "
                             "--set` does: e.g. layers[0].units=64 or train.batch_size=64; the "
                             "spec is renamed <spec>--<field>-<value>")
    parser.add_argument("--dataset", choices=DATASETS,
                        help="use this dataset instead of the spec's input.dataset (as "
                             "--set input.dataset=NAME)")
    parser.add_argument("--data", type=opt.existing_file, metavar="NPZ",
                        help="train and test on your own arrays: an .npz holding x_train, "
                             "y_train, x_test, y_test (as --set input.dataset.npz=PATH; see "
                             "docs/specs.md)")


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
    """--spec with --set, --dataset and --data applied (validated, and named as `harness run`
    names a sweep point, so its records and hash are the overridden spec's); None without
    --spec."""
    point = _single_point(args.set or [])
    for path, value in data_point(args).items():
        for key in point:
            if key.startswith("input.dataset"):
                raise UsageError(f"{'--dataset' if args.dataset else '--data'}: --set {key} "
                                 "is given too; give one of them")
        point[path] = value
    if args.spec is None:
        if point:
            given = "--set" if args.set else "--dataset" if args.dataset else "--data"
            raise UsageError(f"{given}: changes --spec, which is not given (a --from run's "
                             "spec is the one it trained)")
        return None
    return apply_point(load_spec(args.spec), point)


def data_point(args: argparse.Namespace) -> dict[str, Any]:
    """--dataset or --data as the --set they stand for ({} without them)."""
    data = getattr(args, "data", None)
    if args.dataset is not None and data is not None:
        raise UsageError("--data: --dataset is given too; give one of them")
    if data is not None:
        return {NPZ_PATH: str(Path(data).resolve())}
    return {"input.dataset": args.dataset} if args.dataset is not None else {}


def add_framework_policy_options(parser: argparse.ArgumentParser) -> None:
    """Maths and memory layout, chosen once for every framework and recorded."""
    add_run_option(parser, opts.BY_FIELD["tf32"])
    add_run_option(parser, opts.BY_FIELD["layout"])


def add_variant_options(parser: argparse.ArgumentParser) -> None:
    """ONNX Runtime variants of each export and the accuracy gate (harness.latency.variants)."""
    add_run_option(parser, opts.BY_FIELD["ort_variants"])
    add_run_option(parser, opts.BY_FIELD["accuracy_gate"])


def add_strict_providers_option(parser: argparse.ArgumentParser) -> None:
    add_run_option(parser, opts.BY_FIELD["strict_providers"])
