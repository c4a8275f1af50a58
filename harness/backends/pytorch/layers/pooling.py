"""PyTorch entries for pooling: max and average windows (TensorFlow's 'same' paddings) and
global pooling over H and W, or over the steps of a sequence."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.backends.pytorch.layers.base import BuildContext, TorchLayer
from harness.backends.pytorch.layers.conv import symmetric
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo


class AvgPoolSame(nn.Module):
    """TensorFlow 'same' average pooling with asymmetric padding: padded cells are not counted.

    Zero-pad, average over the full window, then rescale each output by window size / number
    of real cells (a precomputed buffer). Plain Pad/AveragePool/Mul ops, so it exports to ONNX.
    """

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int, int, int], in_hw: tuple[int, int]) -> None:
        super().__init__()
        top, bottom, left, right = padding
        self.pad = nn.ZeroPad2d((left, right, top, bottom))
        self.pool = nn.AvgPool2d(kernel, stride)
        ones = torch.ones(1, 1, *in_hw)
        counts = F.avg_pool2d(self.pad(ones), kernel, stride, divisor_override=1)
        self.register_buffer("scale", (kernel[0] * kernel[1]) / counts, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pad(x)) * self.scale


def _pool(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.MaxPool2D | L.AvgPool2D = info.layer  # type: ignore[assignment]
    kernel, stride = layer.pool_size, layer.resolved_strides
    top, bottom, left, right = info.padding
    if isinstance(layer, L.AvgPool2D):
        if symmetric(info.padding):
            return TorchLayer([("pool", nn.AvgPool2d(kernel, stride, (top, left),
                                                     count_include_pad=False))])
        return TorchLayer([("pool", AvgPoolSame(kernel, stride, info.padding,
                                                info.input_shape[:2]))])
    if symmetric(info.padding):  # torch's implicit max-pool padding is -inf
        return TorchLayer([("pool", nn.MaxPool2d(kernel, stride, (top, left)))])
    return TorchLayer([("pad", nn.ConstantPad2d((left, right, top, bottom), float("-inf"))),
                       ("pool", nn.MaxPool2d(kernel, stride))])


class GlobalPool2d(nn.Module):
    """(N, C, H, W) -> (N, C): the mean or the maximum over H and W."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            return torch.amax(x, dim=(2, 3))
        return torch.mean(x, dim=(2, 3))


class GlobalPool1d(nn.Module):
    """(N, steps, C) -> (N, C): the mean or the maximum over the steps (the spec's layout)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            return torch.amax(x, dim=1)
        return torch.mean(x, dim=1)


BUILDERS = {
    L.MaxPool2D: _pool,
    L.AvgPool2D: _pool,
    L.GlobalAvgPool2D: lambda info, ctx: TorchLayer([("pool", GlobalPool2d("avg"))]),
    L.GlobalMaxPool2D: lambda info, ctx: TorchLayer([("pool", GlobalPool2d("max"))]),
    L.GlobalAvgPool1D: lambda info, ctx: TorchLayer([("pool", GlobalPool1d("avg"))]),
    L.GlobalMaxPool1D: lambda info, ctx: TorchLayer([("pool", GlobalPool1d("max"))]),
}
