"""Sliding-window arithmetic shared by convolutions and pools, as TensorFlow computes it."""

from __future__ import annotations

import math

from harness.spec.layers.base import Padding4, Shape, ShapeProblem, needs_rank


def window_1d(size: int, kernel: int, stride: int, padding: str, dilation: int = 1
              ) -> tuple[int, int, int] | None:
    """Output size and (before, after) padding along one axis; None when 'valid' does not fit.
    'same' pads (out - 1) * stride + span - size in all, the odd one at the end."""
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        if size < span:
            return None
        return (size - span) // stride + 1, 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2, total - total // 2


def window_2d(kind: str, shape: Shape, kernel: tuple[int, int], strides: tuple[int, int],
              padding: str, dilation: tuple[int, int] = (1, 1)) -> tuple[Shape, Padding4]:
    """(H_out, W_out, C_in) and the padding of a 2-D window over an (H, W, C) input."""
    needs_rank(shape, (3,), kind)
    rows = window_1d(shape[0], kernel[0], strides[0], padding, dilation[0])
    cols = window_1d(shape[1], kernel[1], strides[1], padding, dilation[1])
    if rows is None or cols is None:
        field = "pool_size" if "pool" in kind else "kernel_size"
        raise ShapeProblem(field, f"window {kernel[0]}x{kernel[1]} does not fit input "
                                  f"{shape[0]}x{shape[1]} with padding 'valid'")
    return (rows[0], cols[0], shape[2]), (rows[1], rows[2], cols[1], cols[2])
