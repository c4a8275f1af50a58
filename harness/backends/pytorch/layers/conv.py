"""PyTorch entries for convolutions. TensorFlow's 'same' puts an odd padding row/column at the
bottom/right; torch pads symmetrically, so an asymmetric padding is an explicit ZeroPad2d."""

from __future__ import annotations

import numpy as np
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
                     padding=padding, bias=layer.use_bias)
    weights = [TorchWeight("kernel", "conv", "weight", hwio_to_oihw, oihw_to_hwio)]
    if layer.use_bias:
        weights.append(TorchWeight("bias", "conv", "bias"))
    return TorchLayer([*parts, ("conv", conv)], tuple(weights))


BUILDERS = {L.Conv2D: _conv2d}
