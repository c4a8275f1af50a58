"""PyTorch entries for the layers that join branches: add and concatenate. Their modules take
the inputs as separate arguments."""

from __future__ import annotations

import torch
from torch import nn

from harness.backends.pytorch.layers.base import BuildContext, TorchLayer
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo


class AddInputs(nn.Module):
    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


class ConcatInputs(nn.Module):
    """Along Keras' last axis: the channels of an NCHW image are torch's dim 1."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=self.dim)


def _concatenate(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    return TorchLayer([("concat", ConcatInputs(1 if len(info.input_shape) == 3 else -1))])


BUILDERS = {
    L.Add: lambda info, ctx: TorchLayer([("add", AddInputs())]),
    L.Concatenate: _concatenate,
}
