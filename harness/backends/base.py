"""The small interface every backend implements: build, weights in/out, train, evaluate, predict.

A backend is one folder under `harness/backends/` (its info.py declares it:
harness.backends.info) plus one line in `harness.backends.BACKENDS`.
Frameworks are imported inside the backend's modules only, so `harness list` stays fast and a
user with only one framework installed can use that backend.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.measure.step_windows import StepWindow
from harness.spec import ModelSpec, Weights

DEVICES = ("cpu", "cuda")
# float64 is for exactness checks (the two frameworks' maths compared far below float32
# rounding); every timing, export and record of the harness is float32.
DTYPES = ("float32", "float64")
# Memory layout of image activations in backends that can choose (PyTorch); Keras' tensors are
# always channels-last (NHWC).
LAYOUTS = ("channels_last", "nchw")


class BackendUnavailable(RuntimeError):
    """The framework is not installed, or the requested device cannot be used."""


class KerasBackendConflict(BackendUnavailable):
    """Keras is already loaded on another of its backends in this process: the backend can run
    only in a process of its own (harness.backends.isolation)."""


@dataclass(frozen=True)
class EpochResult:
    loss: float  # mean training loss over the epoch's batches (weighted by batch size)
    accuracy: float  # training accuracy over the epoch, in training mode (dropout on)
    seconds: float  # wall time of the epoch's training steps only (no validation)
    # The same steps in consecutive windows (harness.measure.step_windows.plan_windows), the
    # device synchronised at each boundary: each window's seconds (they add up to `seconds`),
    # its optimizer steps, and whether it is one first call of a batch shape (FirstSteps:
    # tracing, compilation), timed alone and kept out of steady step time. Empty: not timed.
    window_seconds: tuple[float, ...] = ()
    window_steps: tuple[int, ...] = ()
    window_first_call: tuple[bool, ...] = ()

    @classmethod
    def of_windows(cls, loss: float, accuracy: float, windows: Sequence[StepWindow],
                   timing: tuple[float, tuple[float, ...]]) -> EpochResult:
        """The epoch timed in `windows` (plan_windows); `timing`: time_windows' (seconds,
        each window's seconds)."""
        seconds, window_seconds = timing
        return cls(loss=loss, accuracy=accuracy, seconds=seconds, window_seconds=window_seconds,
                   window_steps=tuple(w.steps for w in windows),
                   window_first_call=tuple(w.first_call for w in windows))


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean categorical cross-entropy, as the framework computes it
    accuracy: float
    # class probabilities (float32, one row per sample) where the backend has them from the
    # same pass; None where getting them takes another (the caller predicts if it needs them)
    probabilities: np.ndarray | None = None


@dataclass
class FirstSteps:
    """The first train-step call of each batch shape, timed until it returns: tracing and
    compilation (tf.function, XLA, torch.compile) happen there, so a backend's compile cost is
    recorded apart from its steady epochs. On an eager backend it is the first step's warm-up;
    on an asynchronous runtime (JAX, a GPU) the step itself may still be running."""

    shapes: set[tuple[int, ...]] = field(default_factory=set)
    seconds: float = 0.0

    def call(self, shape: tuple[int, ...], step: Callable[..., Any], *args: Any) -> Any:
        if shape in self.shapes:
            return step(*args)
        start = time.perf_counter()
        result = step(*args)
        self.seconds += time.perf_counter() - start
        self.shapes.add(shape)
        return result


class Backend(ABC):
    """One framework. `model` arguments are the opaque handle returned by `build`."""

    name: ClassVar[str]
    onnx_converter: ClassVar[str]  # named in export records and error messages
    # Whether `evaluate` yields the class probabilities from its own pass (then a training's
    # test-set pass is that `evaluate`); where it does not, the test-set pass is one `predict`,
    # scored by the harness (harness.training.evaluation), not `evaluate` and then `predict`.
    evaluate_gives_probabilities: ClassVar[bool] = True

    def __init__(self, device: str = "cpu", threads: int | None = None,
                 dtype: str = "float32", tf32: bool = False,
                 layout: str = "channels_last") -> None:
        if device not in DEVICES:
            raise ValueError(f"device must be one of {list(DEVICES)}, got {device!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
        self.device = device
        self.threads = threads
        self.dtype = dtype  # of the weights, the optimizer state and every computation
        self.tf32 = tf32  # float32 matmuls and convolutions may round inputs to TF32 (GPUs)
        self.layout = layout

    @abstractmethod
    def seed(self, seed: int) -> None:
        """Seed the framework's own RNGs (dropout masks)."""

    @abstractmethod
    def build(self, spec: ModelSpec, steps_per_epoch: int | None = None) -> Any:
        """Build the model and its optimizer and loss exactly as the spec says.

        `steps_per_epoch`: the optimizer steps of one training epoch, ceil(n_train /
        batch_size) (harness.data.num_batches; known once the data is loaded), by which a
        learning-rate schedule counted in epochs divides the steps taken. A model built for
        inference, or whose spec has no such schedule, may leave it None; training one that
        has then fails at its first step."""

    @abstractmethod
    def set_weights(self, model: Any, weights: Weights) -> None:
        """Load canonical (channels-last, Keras-layout) arrays; see harness.spec.initializers."""

    @abstractmethod
    def get_weights(self, model: Any) -> Weights:
        """The model's arrays in the canonical layout, keyed like `set_weights`, in `dtype`."""

    @abstractmethod
    def count_params(self, model: Any) -> tuple[int, int]:
        """(trainable, non_trainable) as the framework counts them (BN statistics non-trainable)."""

    @abstractmethod
    def to_native(self, x: np.ndarray, y: np.ndarray) -> Any:
        """Move a whole dataset split (inputs in `dtype`, int64 labels) into framework memory
        once."""

    @abstractmethod
    def train_epoch(self, model: Any, data: Any, order: np.ndarray, batch_size: int) -> EpochResult:
        """One pass over `data` in exactly the given sample order; the last batch may be partial."""

    @abstractmethod
    def evaluate(self, model: Any, data: Any, batch_size: int) -> Evaluation:
        """Loss and accuracy (and probabilities where free) in inference mode."""

    @abstractmethod
    def predict(self, model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities, float32, in inference mode."""

    @abstractmethod
    def save(self, model: Any, directory: Path) -> Path:
        """Save the trained model in the framework's own format; return the file written."""

    @abstractmethod
    def save_training_state(self, model: Any, path: Path) -> None:
        """Write to `path` everything that decides the rest of training: all the model's
        variables (BatchNorm statistics included), the optimizer's state and step count, and
        the framework RNG state that draws dropout masks, so `load_training_state` in a new
        process continues exactly where this one stopped (harness.checkpoint)."""

    @abstractmethod
    def load_training_state(self, model: Any, path: Path) -> None:
        """Restore what `save_training_state` wrote into a model freshly built (and seeded)
        from the same spec; ValueError when the file does not fit the model."""

    @abstractmethod
    def export_onnx(self, model: Any, path: Path, opset: int) -> None:
        """Write `model` as ONNX: one float32 input named `input` of shape (batch, *spec input
        shape) in the spec's layout, one output `probabilities` (batch, 10); batch is dynamic."""

    @abstractmethod
    def native_predictor(self, model: Any, x: np.ndarray) -> Callable[[], Any]:
        """A zero-argument callable running one inference of `x` (already on the device) the
        way the framework is fastest when used well (no per-call conversions), blocking until
        the result is ready, for latency timing against ONNX Runtime."""

    def compiled(self, model: Any) -> Any:
        """A new model with `model`'s weights that runs compiled (PyTorch: torch.compile with
        inductor; Keras: jit_compile=True, XLA on TensorFlow, torch.compile on PyTorch) in
        `predict`, `native_predictor` and training; compilation happens at its first call.
        BackendUnavailable where this platform cannot compile, or the backend already compiles
        by default (Keras on JAX: XLA), with the reason."""
        raise BackendUnavailable(f"backend {self.name!r} has no compiled mode")

    @abstractmethod
    def environment(self) -> dict[str, Any]:
        """Versions, device description and the switches that decide speed, each read back
        from the framework: `intra_op_threads` / `inter_op_threads`, `compile_mode` (eager,
        graph, xla, torch.compile), `compile_seconds` (FirstSteps of the last model built; None
        before it trained), `tf32` (may float32 maths round to TF32), `layout` (memory layout of
        the first convolution's output, None without one), `data_device` (where `to_native` put
        the data last); a Keras backend also `keras_backend`, keras.backend.backend()."""
