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

from harness.backends.pytorch.exporter import export_module


class _Inference(torch.nn.Module):
    """`model` in inference mode with one input: the function the file holds."""

    def __init__(self, model: keras.Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, training=False)


def export_onnx(model: keras.Model, path: Path, opset: int, device: torch.device) -> None:
    export_module(_Inference(model), model.input_shape[1:], device, path, opset)
