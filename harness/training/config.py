"""How a training runs (`harness train`'s options, the compile modes): apart from the loop,
so the trained model (harness.training.trained) and the loop both read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends import Backend, BackendUnavailable

# How the framework runs the model (`--compile`): eager, or compiled (Backend.compiled:
# torch.compile with inductor, Keras jit_compile=True); for training and native inference.
EAGER, COMPILED = "eager", "compiled"
COMPILE_MODES = (EAGER, COMPILED)


@dataclass(frozen=True)
class TrainConfig:
    """What `harness train` varies; None means "as the spec says" (or all data)."""

    backend: str
    device: str = "cpu"
    epochs: int | None = None
    seed: int | None = None
    limit: int | None = None
    limit_test: int | None = None
    threads: int | None = None  # None: every core the process may use (harness.measure.environment)
    data_dir: Path | None = None
    batch_size: int | None = None
    tf32: bool = False  # let float32 matmuls and convolutions round to TF32 (both frameworks)
    layout: str = "channels_last"  # memory layout of image activations where it is a choice
    # "compiled": torch.compile / Keras XLA (Backend.compiled); the first epoch holds the
    # compilation, which epoch_timing keeps apart from the steady epochs
    compile: str = EAGER
    download: bool | None = None  # missing data files: harness.data.datasets.may_download


class CompileUnavailable(BackendUnavailable):
    """The compiled mode cannot run on this platform (no compiler, a backend that already
    compiles every step): a matrix job records it as `unavailable`, not as a failure."""


def compiled_model(backend: Backend, model: Any, mode: str) -> Any:
    """`model` in the training mode `mode` (COMPILE_MODES)."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode must be one of {list(COMPILE_MODES)}, got {mode!r}")
    if mode == EAGER:
        return model
    try:
        return backend.compiled(model)
    except BackendUnavailable as exc:
        raise CompileUnavailable(f"{backend.name} --compile {mode}: {exc}") from exc


def native_outputs_match(device: str, tf32: bool | None, compile_mode: str | None) -> bool:
    """A training's recorded test-set probabilities (on `device`, `tf32`, in `compile_mode`)
    are those its model computes rebuilt eager on the CPU without TF32 (the export's model):
    the native side of the export's parity check, without another pass."""
    return device == "cpu" and not tf32 and (compile_mode or EAGER) == EAGER
