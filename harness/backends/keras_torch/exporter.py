"""Keras 3 on PyTorch -> ONNX through torch.onnx's dynamo exporter, as the native PyTorch
backend exports (harness.backends.pytorch.exporter).

A Keras model on PyTorch is a torch.nn.Module whose call takes Keras' arguments; a one-input
module around `model(x, training=False)` gives the exporter the plain function it traces.
Keras' own `model.export(format="onnx")` takes the same exporter for fixed shapes but falls
back to the TorchScript exporter for a dynamic batch; the dynamo exporter with a dynamic
batch dimension is what the harness's interface needs.
"""

from __future__ import annotations

from pathlib import Path

import keras
import torch

from harness.backends.base import BackendUnavailable
from harness.backends.pytorch.exporter import export_module


class _Inference(torch.nn.Module):
    """`model` in inference mode with one input: the function the file holds."""

    def __init__(self, model: keras.Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, training=False)


def unexportable(model: keras.Model) -> list[str]:
    """The layers torch.onnx cannot export with a dynamic batch: a GRU without reset_after,
    which Keras 3.15 on PyTorch runs in its generic step loop (its LSTMs and reset_after GRUs
    take torch's own kernels); the traced loop keeps the example's batch size, and ONNX
    Runtime then fails on any other."""
    return [layer.name for layer in model.layers
            if isinstance(layer, keras.layers.GRU) and not layer.reset_after]


def export_onnx(model: keras.Model, path: Path, opset: int, device: torch.device) -> None:
    refused = unexportable(model)
    if refused:
        raise BackendUnavailable(
            f"Keras {keras.__version__} on PyTorch cannot export {', '.join(refused)} (gru, "
            "reset_after false) to ONNX: torch.onnx traces its step loop with a fixed batch "
            "size; export with the torch, keras or keras-jax backend, or use reset_after true")
    export_module(_Inference(model), model.input_shape[1:], device, path, opset)
