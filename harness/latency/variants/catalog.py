"""The variants `harness bench` can time beside the float32 export and the eager framework.

ONNX Runtime variants (`--ort-variants`): the four graph optimisation levels of the float32
export (a session option: the file stays the same), int8 dynamic and static (QDQ) quantisation
through `onnxruntime.quantization`, and float16 for the CUDA provider. Native modes
(`--compile`): eager (always timed: the reference of every speed-up) and compiled
(torch.compile with inductor; Keras jit_compile=True, XLA).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.ort.sessions import GRAPH_OPTIMIZATION_LEVELS
from harness.training import COMPILE_MODES

# the native modes are training's (`--compile`), named here beside the ONNX Runtime variants
from harness.training import COMPILED as COMPILED
from harness.training import EAGER as EAGER


@dataclass(frozen=True)
class OrtVariant:
    name: str
    precision: str  # of the weights and the arithmetic: float32, int8, float16
    # session graph optimisation level; None: the bench's own (--graph-optimization)
    graph_optimization: str | None
    providers: tuple[str, ...]  # where it is timed; others get `unavailable` records
    description: str


OPT_PREFIX = "opt-"
ALL = "all"
ORT_VARIANTS: dict[str, OrtVariant] = {
    **{f"{OPT_PREFIX}{level}": OrtVariant(
        f"{OPT_PREFIX}{level}", "float32", level, ("cpu", "cuda"),
        f"float32 export, ONNX Runtime graph optimisation level {level!r}")
       for level in GRAPH_OPTIMIZATION_LEVELS},
    "int8-dynamic": OrtVariant("int8-dynamic", "int8", None, ("cpu", "cuda"),
                               "int8 weights, activations quantised at run time "
                               "(onnxruntime.quantization.quantize_dynamic)"),
    "int8-static": OrtVariant("int8-static", "int8", None, ("cpu", "cuda"),
                              "int8 QDQ, activation ranges calibrated on training images "
                              "(onnxruntime.quantization.quantize_static)"),
    "fp16": OrtVariant("fp16", "float16", None, ("cuda",),
                       "float16 weights and arithmetic, float32 interface; for the CUDA "
                       "provider"),
}
DEFAULT_ACCURACY_GATE = 0.99  # of the float32 model's accuracy, as MLPerf's 99% target
FAILS_ACCURACY = "fails accuracy"


def baseline_variant(graph_optimization: str) -> str:
    """The variant name of the bench's own ONNX Runtime records."""
    return f"{OPT_PREFIX}{graph_optimization}"


def expand_ort_variants(names: Iterable[str]) -> list[str]:
    """Names in catalog order, `all` for every one; ValueError for an unknown name."""
    names = list(names)
    for name in names:
        if name != ALL and name not in ORT_VARIANTS:
            raise ValueError(f"unknown ONNX Runtime variant {name!r}; expected some of "
                             f"{[ALL, *ORT_VARIANTS]}")
    wanted = set(ORT_VARIANTS) if ALL in names else set(names)
    return [name for name in ORT_VARIANTS if name in wanted]


def check_compile_modes(modes: Iterable[str]) -> list[str]:
    """The modes, each once, in COMPILE_MODES order; ValueError for an unknown one."""
    modes = list(modes)
    for mode in modes:
        if mode not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {mode!r}; expected some of "
                             f"{list(COMPILE_MODES)}")
    return [mode for mode in COMPILE_MODES if mode in modes]


def check_accuracy_gate(gate: float) -> float:
    """The gate as a fraction of the float32 accuracy, 0 to 1; ValueError otherwise."""
    if isinstance(gate, bool) or not isinstance(gate, (int, float)) or not 0 <= gate <= 1:
        raise ValueError(f"accuracy gate must be a fraction from 0 to 1 of the float32 "
                         f"model's accuracy, got {gate!r}")
    return float(gate)
