"""Convolutions on channels-last images. Kernels are Keras' (kh, kw, c_in, c_out)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from harness.spec.layers.base import (
    Activation,
    Inferred,
    LayerSpec,
    Padding,
    PositivePair,
    Shape,
    WeightSpec,
    int_or_pair,
)
from harness.spec.layers.initializer_specs import (
    GlorotUniform,
    Initializer,
    InitializerShorthand,
    Zeros,
)
from harness.spec.layers.windows import window_2d


class Conv2D(InitializerShorthand, LayerSpec):
    """2-D convolution on a channels-last image. 'same' pads like TensorFlow (extra at the end)."""

    type: Literal["conv2d"]
    filters: StrictInt = Field(gt=0)
    kernel_size: PositivePair
    strides: PositivePair = (1, 1)
    padding: Padding = "valid"
    activation: Activation = "linear"
    use_bias: StrictBool = True
    kernel_initializer: Initializer = GlorotUniform()
    bias_initializer: Initializer = Zeros()

    @field_validator("kernel_size", "strides", mode="before")
    @classmethod
    def _int_or_pair(cls, value: Any) -> Any:
        return int_or_pair(value)

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        out, padding = window_2d("conv2d", shapes[0], self.kernel_size, self.strides,
                                 self.padding)
        return Inferred((out[0], out[1], self.filters), padding)

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        kh, kw = self.kernel_size
        kernel = WeightSpec("kernel", (kh, kw, shapes[0][2], self.filters),
                            self.kernel_initializer)
        if not self.use_bias:
            return (kernel,)
        return kernel, WeightSpec("bias", (self.filters,), self.bias_initializer)

    def positions(self, out: Inferred) -> int:
        return out.shape[0] * out.shape[1]

    def describe(self) -> str:
        kh, kw = self.kernel_size
        stride = "" if self.strides == (1, 1) else f" /{self.strides[0]}x{self.strides[1]}"
        return f"conv2d {self.filters} {kh}x{kw}{stride} {self.padding} {self.activation}"
