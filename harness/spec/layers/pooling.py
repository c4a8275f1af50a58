"""Pooling: windows (max, average) and global (over H and W) on channels-last images, and
global over the steps of a sequence."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from harness.spec.layers.base import (
    Inferred,
    LayerSpec,
    Padding,
    PositivePair,
    Shape,
    int_or_pair,
    needs_rank,
)
from harness.spec.layers.windows import window_2d


class _Pool2D(LayerSpec):
    pool_size: PositivePair = (2, 2)
    strides: PositivePair | None = None  # None means strides = pool_size (Keras)
    padding: Padding = "valid"

    @field_validator("pool_size", "strides", mode="before")
    @classmethod
    def _int_or_pair(cls, value: Any) -> Any:
        return int_or_pair(value)

    @property
    def resolved_strides(self) -> tuple[int, int]:
        return self.strides if self.strides is not None else self.pool_size

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        out, padding = window_2d(self.type, shapes[0], self.pool_size, self.resolved_strides,
                                 self.padding)
        return Inferred(out, padding)

    def describe(self) -> str:
        ph, pw = self.pool_size
        sh, sw = self.resolved_strides
        return f"{self.type} {ph}x{pw} /{sh}x{sw} {self.padding}"


class MaxPool2D(_Pool2D):
    type: Literal["maxpool2d"]


class AvgPool2D(_Pool2D):
    """Average pooling; with 'same' padding the padded cells are not counted (TensorFlow)."""

    type: Literal["avgpool2d"]


class _GlobalPool2D(LayerSpec):
    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        needs_rank(shapes[0], (3,), self.type)
        return Inferred((shapes[0][2],))


class GlobalAvgPool2D(_GlobalPool2D):
    """The mean of each channel over the whole image: (H, W, C) -> (C,)."""

    type: Literal["global_avgpool2d"]


class GlobalMaxPool2D(_GlobalPool2D):
    """The maximum of each channel over the whole image: (H, W, C) -> (C,)."""

    type: Literal["global_maxpool2d"]


class _GlobalPool1D(LayerSpec):
    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        needs_rank(shapes[0], (2,), self.type)
        return Inferred((shapes[0][1],))


class GlobalAvgPool1D(_GlobalPool1D):
    """The mean of each channel over the steps of a sequence: (steps, C) -> (C,)."""

    type: Literal["global_avgpool1d"]


class GlobalMaxPool1D(_GlobalPool1D):
    """The maximum of each channel over the steps of a sequence: (steps, C) -> (C,)."""

    type: Literal["global_maxpool1d"]
