"""KerasTorchBackend: Keras 3 on PyTorch, training through Keras' own train step.

Keras on PyTorch runs eager by default (`jit_compile=True` would wrap the step in
torch.compile): the harness keeps that default, as it keeps every framework's. A Keras model is
a torch.nn.Module here; its variables live on the device Keras' device scope names, so every
build, transfer and step runs inside `keras.device(...)`. Threads and TF32 are torch's, set as
the native PyTorch backend sets them (one budget, TF32 off unless asked).

Import through `harness.backends.keras_torch`, which selects the PyTorch backend before keras
loads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import torch

from harness.backends.base import BackendUnavailable
from harness.backends.keras_common import differs_on_torch
from harness.backends.keras_common.backend import (
    FirstSteps,
    KerasBackendBase,
    batch_shape,
)
from harness.backends.pytorch import backend as torch_backend
from harness.backends.pytorch import checkpoint as torch_checkpoint
from harness.measure.environment import thread_budget
from harness.spec import ModelSpec


class KerasTorchBackend(KerasBackendBase):
    name: ClassVar[str] = "keras-torch"
    onnx_converter: ClassVar[str] = "torch.onnx (dynamo)"
    keras_backend: ClassVar[str] = "torch"
    jit_compile: ClassVar[bool] = False  # Keras on PyTorch: eager unless asked (torch.compile)

    def __init__(self, device: str = "cpu", threads: int | None = None,
                 dtype: str = "float32", tf32: bool = False,
                 layout: str = "channels_last") -> None:
        super().__init__(device, threads, dtype, tf32, layout)
        if device == "cuda":
            torch_backend.require_cuda()
        torch_backend.set_threads(thread_budget(threads))
        torch_backend.set_tf32(tf32)
        self._torch_device = torch.device("cuda:0" if device == "cuda" else "cpu")

    def _framework_rng(self) -> dict[str, np.ndarray]:
        # Keras on PyTorch draws the masks of dropout layers without a seed from torch's RNG
        return torch_checkpoint.rng_arrays()

    def _restore_framework_rng(self, states: dict[str, np.ndarray]) -> None:
        torch_checkpoint.restore_rng_arrays(states)

    def build(self, spec: ModelSpec, steps_per_epoch: int | None = None) -> keras.Sequential:
        """The spec's model; BackendUnavailable where Keras on PyTorch would compute another
        function than the spec means (`differs_on_torch`), never a silent different model."""
        unfaithful = differs_on_torch(spec)
        if unfaithful:
            raise BackendUnavailable(
                f"backend {self.name!r} cannot build spec {spec.name!r} as it is meant: Keras "
                f"{keras.__version__} on PyTorch computes the last row or column of windows of "
                f"{', '.join(unfaithful)} otherwise than Keras on TensorFlow and JAX; use "
                "padding 'valid', an input size that pads evenly, or another backend")
        return super().build(spec, steps_per_epoch)

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        return keras.device(str(self._torch_device))

    def _on_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.tensor(array, device=self._torch_device)  # a copy, on the device

    def _gather_split(self, x: torch.Tensor, index: np.ndarray,
                      sizes: list[int]) -> list[torch.Tensor]:
        rows = torch.from_numpy(index).to(self._torch_device)
        return list(x[rows].split(sizes))

    def _tensor_device(self, tensor: torch.Tensor) -> str:
        return str(tensor.device)

    def _steps(self, model: keras.Model, batches: list[tuple[Any, Any]],
               first: FirstSteps) -> Callable[[int, int], None]:
        # `fit` hands the step a one-element list per batch and switches the module to
        # training mode for the epoch (Keras' layers take `training` from the step itself).
        feeds = [(batch_shape(batch), [batch]) for batch in batches]
        model.train()

        def run(start: int, stop: int) -> None:
            for shape, feed in feeds[start:stop]:
                first.call(shape, model.train_function, feed)
            self._synchronize()

        return run

    def _end_epoch(self, model: keras.Model) -> None:
        model.eval()  # as `fit` leaves it after each epoch's steps

    def _synchronize(self) -> None:
        if self._torch_device.type == "cuda":
            torch.cuda.synchronize(self._torch_device)

    def _check_compiler(self) -> None:
        problem = torch_backend._compiler_problem(self.device)
        if problem:
            raise BackendUnavailable(problem)

    def export_onnx(self, model: keras.Model, path: Path, opset: int) -> None:
        from harness.backends.keras_torch.exporter import export_onnx

        with self._scope():
            export_onnx(model, path, opset, self._torch_device)

    def native_predictor(self, model: keras.Model, x: np.ndarray) -> Callable[[], Any]:
        from harness.backends.keras_torch.inference import native_predictor

        with self._scope():
            return native_predictor(model, x, self._torch_device)

    def _framework_environment(self) -> dict[str, Any]:
        return torch_backend.torch_environment(self._torch_device)
