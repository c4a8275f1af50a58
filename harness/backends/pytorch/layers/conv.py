"""PyTorch entries for convolutions. TensorFlow's 'same' puts an odd padding row/column at the
bottom/right; torch pads symmetrically (and refuses padding='same' with strides > 1), so an
asymmetric padding is an explicit ZeroPad2d (ConstantPad1d on a sequence)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.backends.pytorch.layers.base import BuildContext, TorchLayer, TorchWeight
from harness.spec import layers as L
from harness.spec.layers import Padding4
from harness.spec.shapes import LayerInfo


def symmetric(padding: Padding4) -> bool:
    top, bottom, left, right = padding
    return top == bottom and left == right


def hwio_to_oihw(a: np.ndarray) -> np.ndarray:
    return a.transpose(3, 2, 0, 1)


def oihw_to_hwio(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0)


def depthwise_to_torch(a: np.ndarray) -> np.ndarray:
    """Keras (kh, kw, in, multiplier) -> torch grouped (in * multiplier, 1, kh, kw). Output
    channel c * multiplier + m is input channel c's m-th kernel in both: the (in, multiplier)
    axes flatten channel-major."""
    kh, kw, channels, multiplier = a.shape
    return a.reshape(kh, kw, channels * multiplier, 1).transpose(2, 3, 0, 1)


def depthwise_from_torch(w: np.ndarray, multiplier: int) -> np.ndarray:
    out, _, kh, kw = w.shape
    return w.transpose(2, 3, 0, 1).reshape(kh, kw, out // multiplier, multiplier)


def explicit_padding(padding: Padding4) -> tuple[list[tuple[str, nn.Module]], tuple[int, int]]:
    """A ZeroPad2d part when the padding is asymmetric, and the symmetric (rows, cols) padding
    left for the convolution itself."""
    top, bottom, left, right = padding
    if symmetric(padding):
        return [], (top, left)
    return [("pad", nn.ZeroPad2d((left, right, top, bottom)))], (0, 0)


def _conv2d(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.Conv2D = info.layer  # type: ignore[assignment]
    parts, padding = explicit_padding(info.padding)
    conv = nn.Conv2d(info.input_shape[2], layer.filters, layer.kernel_size, layer.strides,
                     padding=padding, dilation=layer.dilation_rate, groups=layer.groups,
                     bias=layer.use_bias)
    weights = [TorchWeight("kernel", "conv", "weight", hwio_to_oihw, oihw_to_hwio)]
    if layer.use_bias:
        weights.append(TorchWeight("bias", "conv", "bias"))
    return TorchLayer([*parts, ("conv", conv)], tuple(weights))


def _depthwise(info: LayerInfo, name: str, bias: bool) -> tuple[nn.Conv2d, TorchWeight]:
    """The grouped convolution (groups = input channels) of a depthwise or separable layer."""
    layer: L.DepthwiseConv2D | L.SeparableConv2D = info.layer  # type: ignore[assignment]
    channels, multiplier = info.input_shape[2], layer.depth_multiplier
    _, padding = explicit_padding(info.padding)
    conv = nn.Conv2d(channels, channels * multiplier, layer.kernel_size, layer.strides,
                     padding=padding, dilation=layer.dilation_rate, groups=channels, bias=bias)
    return conv, TorchWeight(name, "depthwise", "weight", depthwise_to_torch,
                             lambda w: depthwise_from_torch(w, multiplier))


def _depthwise_conv2d(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.DepthwiseConv2D = info.layer  # type: ignore[assignment]
    parts, _ = explicit_padding(info.padding)
    conv, kernel = _depthwise(info, "kernel", layer.use_bias)
    weights = [kernel]
    if layer.use_bias:
        weights.append(TorchWeight("bias", "depthwise", "bias"))
    return TorchLayer([*parts, ("depthwise", conv)], tuple(weights))


def _separable_conv2d(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    """Depthwise (no bias), then a 1x1 convolution holding the bias: Keras' order."""
    layer: L.SeparableConv2D = info.layer  # type: ignore[assignment]
    parts, _ = explicit_padding(info.padding)
    depthwise, kernel = _depthwise(info, "depthwise_kernel", False)
    pointwise = nn.Conv2d(depthwise.out_channels, layer.filters, 1, bias=layer.use_bias)
    weights = [kernel, TorchWeight("pointwise_kernel", "pointwise", "weight", hwio_to_oihw,
                                   oihw_to_hwio)]
    if layer.use_bias:
        weights.append(TorchWeight("bias", "pointwise", "bias"))
    return TorchLayer([*parts, ("depthwise", depthwise), ("pointwise", pointwise)],
                      tuple(weights))


def steps_padding(padding: Padding4) -> tuple[int, int]:
    """The padding before and after a sequence's steps (LayerInfo keeps it as top/bottom)."""
    return padding[0], padding[1]


class Conv1dSteps(nn.Module):
    """A 1-D convolution on a sequence in the spec's layout (N, steps, C): torch convolves
    (N, C, steps), so the module transposes in and out (exported as two Transposes). The
    padding before and after the steps is explicit: TensorFlow's 'same' may be asymmetric and
    'causal' is all before."""

    def __init__(self, conv: nn.Conv1d, before: int, after: int) -> None:
        super().__init__()
        self.conv = conv
        self.before, self.after = before, after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        if self.before or self.after:
            x = nn.functional.pad(x, (self.before, self.after))
        return self.conv(x).transpose(1, 2)


def _conv1d(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.Conv1D = info.layer  # type: ignore[assignment]
    conv = nn.Conv1d(info.input_shape[1], layer.filters, layer.kernel_size, layer.strides,
                     dilation=layer.dilation_rate, bias=layer.use_bias)
    # Keras (k, in, out) <-> torch (out, in, k)
    weights = [TorchWeight("kernel", "conv1d", "conv.weight", lambda a: a.transpose(2, 1, 0),
                           lambda w: w.transpose(2, 1, 0))]
    if layer.use_bias:
        weights.append(TorchWeight("bias", "conv1d", "conv.bias"))
    module = Conv1dSteps(conv, *steps_padding(info.padding))
    return TorchLayer([("conv1d", module)], tuple(weights))


BUILDERS = {
    L.Conv2D: _conv2d,
    L.DepthwiseConv2D: _depthwise_conv2d,
    L.SeparableConv2D: _separable_conv2d,
    L.Conv1D: _conv1d,
}
