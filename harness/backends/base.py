"""The small interface every backend implements: build, weights in/out, train, evaluate, predict.

A backend is one folder under `harness/backends/` plus one line in `harness.backends.REGISTRY`.
Frameworks are imported inside the backend's modules only, so `harness list` stays fast and a
user with only one framework installed can use that backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.spec import ModelSpec, Weights

DEVICES = ("cpu", "cuda")


class BackendUnavailable(RuntimeError):
    """The framework is not installed, or the requested device cannot be used."""


@dataclass(frozen=True)
class EpochResult:
    loss: float  # mean training loss over the epoch's batches (weighted by batch size)
    accuracy: float  # training accuracy over the epoch, in training mode (dropout on)
    seconds: float  # wall time of the epoch's training steps only (no validation)


class Backend(ABC):
    """One framework. `model` arguments are the opaque handle returned by `build`."""

    name: ClassVar[str]
    onnx_converter: ClassVar[str]  # named in export records and error messages

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        if device not in DEVICES:
            raise ValueError(f"device must be one of {list(DEVICES)}, got {device!r}")
        self.device = device
        self.threads = threads

    @abstractmethod
    def seed(self, seed: int) -> None:
        """Seed the framework's own RNGs (dropout masks)."""

    @abstractmethod
    def build(self, spec: ModelSpec) -> Any:
        """Build the model and its optimizer and loss exactly as the spec says."""

    @abstractmethod
    def set_weights(self, model: Any, weights: Weights) -> None:
        """Load canonical (channels-last, Keras-layout) arrays; see harness.spec.initializers."""

    @abstractmethod
    def get_weights(self, model: Any) -> Weights:
        """Return the model's arrays in the canonical layout, keyed like `set_weights`."""

    @abstractmethod
    def count_params(self, model: Any) -> tuple[int, int]:
        """(trainable, non_trainable) as the framework counts them (BN statistics non-trainable)."""

    @abstractmethod
    def to_native(self, x: np.ndarray, y: np.ndarray) -> Any:
        """Move a whole dataset split (float32 inputs, int64 labels) into framework memory once."""

    @abstractmethod
    def train_epoch(self, model: Any, data: Any, order: np.ndarray, batch_size: int) -> EpochResult:
        """One pass over `data` in exactly the given sample order; the last batch may be partial."""

    @abstractmethod
    def evaluate(self, model: Any, data: Any, batch_size: int) -> tuple[float, float]:
        """(mean categorical cross-entropy, accuracy) in inference mode."""

    @abstractmethod
    def predict(self, model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities, float32, in inference mode."""

    @abstractmethod
    def save(self, model: Any, directory: Path) -> Path:
        """Save the trained model in the framework's own format; return the file written."""

    @abstractmethod
    def export_onnx(self, model: Any, path: Path, opset: int) -> None:
        """Write `model` as ONNX: one float32 input named `input` of shape (batch, *spec input
        shape) in the spec's layout, one output `probabilities` (batch, 10); batch is dynamic."""

    @abstractmethod
    def native_predictor(self, model: Any, x: np.ndarray) -> Callable[[], Any]:
        """A zero-argument callable running one inference of `x` (already on the device) the
        way the framework is fastest when used well (no per-call conversions), blocking until
        the result is ready, for latency timing against ONNX Runtime."""

    @abstractmethod
    def environment(self) -> dict[str, Any]:
        """Versions, device description, threads and compile mode (eager, graph, XLA, ...)."""
