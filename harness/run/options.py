"""`harness run`'s options, defined once: each one's flag, RunConfig field, default, help, how
the command line checks its value and how a command line writes it back. The command line
builds its options from RUN_OPTIONS (harness.commands.run), RunConfig takes its defaults from
it (harness.run.plan), and a report rebuilds the commands behind it with it
(harness.report.reproduce).

The value checks themselves stay at the command line's edge (harness.commands.args.CHECKS):
an option names its check here, so a bad value is refused while parsing, one line naming the
option, the value and what is allowed, exit status 2.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from harness.backends import backend_names
from harness.backends.base import DEVICES, LAYOUTS
from harness.backends.onnx_io import DEFAULT_OPSET
from harness.latency.variants.catalog import ALL, DEFAULT_ACCURACY_GATE, ORT_VARIANTS
from harness.training import COMPILE_MODES, EAGER

# How an option takes its value, and how a command line writes it: `--name v1,v2` (list),
# `--name v` (value), `--name` alone when true (switch, or flag: True or None), `--name v`
# once per value (repeat).
LIST, VALUE, SWITCH, FLAG, REPEAT = "list", "value", "switch", "flag", "repeat"


@dataclass(frozen=True)
class RunOption:
    flag: str  # --batch-sizes
    field: str  # its RunConfig field
    help: str
    default: Any = None  # RunConfig's (copied for each config), and the command line's
    form: str = VALUE
    check: str = "str"  # the command line's check of a value (a list's: of each item)
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    # the argparse destination and the job field it becomes, where it is not `field`
    # (--compile: a run's compile_modes, each job's compile)
    key: str | None = None

    @property
    def dest(self) -> str:
        return self.key or self.field

    def default_value(self) -> Any:
        return copy.copy(self.default)


_DATA_DIR_HELP = ("the datasets' folder, which must exist (default: $HARNESS_DATA_DIR or a user "
                  "cache folder)")
THREADS_HELP = ("compute threads for every runtime: N intra-op, 1 inter-op (TensorFlow, "
                "PyTorch, ONNX Runtime alike; default: every core this process may use)")

RUN_OPTIONS = (
    RunOption("--specs", "specs", "names, globs (cnn*), study:NAME (a study of the zoo), "
              "zoo:modern (every spec of a zoo), YAML paths, or all (the MNIST zoo)", form=LIST),
    RunOption("--backends", "backends", f"comma-separated, of {','.join(backend_names())} "
              "(default: every one installed here; one named and not installed is refused)",
              form=LIST, choices=tuple(backend_names())),
    RunOption("--providers", "providers", "ONNX Runtime providers for latency, comma-separated "
              "(default: cpu)", ["cpu"], LIST, choices=("cpu", "cuda")),
    RunOption("--batch-sizes", "batch_sizes", "latency batch sizes (default: 1,32,256)",
              [1, 32, 256], LIST, "batch_size"),
    RunOption("--seeds", "seeds", "repeat every job with these seeds (default: the spec's seed)",
              form=LIST, check="seed"),
    RunOption("--epochs", "epochs", "default: each spec's", check="positive_int"),
    RunOption("--limit", "limit", "train on the first N images", check="training_limit"),
    RunOption("--device", "device", "where the frameworks train", "cpu", choices=DEVICES),
    RunOption("--set", "sets", "override a spec field; lists expand into a grid (repeatable; a "
              "run plans at most 10,000 jobs)", [], REPEAT, "set_override",
              metavar="PATH=V1[,V2...]", key="set"),
    RunOption("--opset", "opset", f"ONNX opset (default: {DEFAULT_OPSET})", DEFAULT_OPSET,
              check="opset"),
    RunOption("--latency-min-runs", "latency_min_runs", "timed runs per latency figure, at "
              "least (default 20)", 20, check="runs"),
    RunOption("--latency-min-seconds", "latency_min_seconds", "seconds per latency figure, at "
              "least (default 0.5)", 0.5, check="seconds"),
    RunOption("--compile", "compile_modes", "a job per framework mode, comma-separated: eager "
              "(default), compiled (torch.compile/inductor, Keras XLA) for training and native "
              "latency; a mode this platform cannot run is recorded unavailable", [EAGER], LIST,
              choices=tuple(COMPILE_MODES), key="compile"),
    RunOption("--ort-variants", "ort_variants", f"ONNX Runtime variants of each export, or "
              f"{ALL}: {', '.join(ORT_VARIANTS)}", [], LIST, choices=(ALL, *ORT_VARIANTS)),
    RunOption("--accuracy-gate", "accuracy_gate", "mark a variant below this fraction of the "
              f"float32 model's accuracy `fails accuracy` (default {DEFAULT_ACCURACY_GATE})",
              DEFAULT_ACCURACY_GATE, check="fraction"),
    RunOption("--strict-providers", "strict_providers", "record a CUDA ONNX Runtime session "
              "that would run any node on the CPU as unavailable instead of timing it (ORT's "
              "session.disable_cpu_ep_fallback)", False, SWITCH),
    RunOption("--tf32", "tf32", "let float32 matmuls and convolutions round to TF32 on GPUs "
              "that have it, in both frameworks (default: off in both; TensorFlow's own default "
              "is on, PyTorch's off for matmuls)", False, SWITCH),
    RunOption("--layout", "layout", "memory layout of PyTorch's CNN activations and kernels "
              "(default: channels_last, as Keras' NHWC tensors; Keras has no choice)",
              "channels_last", choices=LAYOUTS),
    RunOption("--data-dir", "data_dir", _DATA_DIR_HELP, check="data_folder"),
    RunOption("--limit-test", "limit_test", "use the first N test images (default: all 10,000)",
              check="test_limit"),
    RunOption("--threads", "threads", THREADS_HELP, check="threads"),
    RunOption("--download", "download", "download missing dataset files into --data-dir or "
              "$HARNESS_DATA_DIR too (default: only into the user cache folder)", form=FLAG),
)
BY_FIELD = {option.field: option for option in RUN_OPTIONS}
BY_DEST = {option.dest: option for option in RUN_OPTIONS}


def default(field: str) -> Any:
    """RunConfig's default of `field` (a fresh copy of a list)."""
    return BY_FIELD[field].default_value()


def value_text(value: Any) -> str:
    """A value as a command line writes it: a list comma-separated."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def written(option: RunOption, value: Any) -> list[str]:
    """The command-line tokens that give `option` `value`; none for its default (a job's one
    compile mode is its default when the run's default list holds only it)."""
    if value is None or value_text(value) == value_text(option.default):
        return []
    if option.form in (SWITCH, FLAG):
        return [option.flag] if value else []
    if option.form == REPEAT:
        return [token for item in value for token in (option.flag, str(item))]
    return [option.flag, value_text(value)]
