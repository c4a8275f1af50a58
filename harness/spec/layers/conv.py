"""Convolutions: on channels-last images (conv2d, depthwise and separable) and on sequences
(conv1d). Kernels are in Keras' layouts: conv2d (kh, kw, c_in / groups, c_out), depthwise
(kh, kw, c_in, depth_multiplier), conv1d (k, c_in, c_out)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from harness.spec.layers.base import (
    Activation,
    Inferred,
    LayerSpec,
    Padding,
    PositivePair,
    Shape,
    ShapeProblem,
    WeightSpec,
    WindowSize,
    int_or_pair,
    needs_rank,
)
from harness.spec.layers.initializer_specs import (
    GlorotUniform,
    Initializer,
    Zeros,
)
from harness.spec.layers.windows import window_1d, window_2d

Single = tuple[WindowSize]  # a 1-D kernel, stride or dilation, stored as Keras does: (k,)


def int_or_single(value: Any) -> Any:
    """Accept `3` or `[3]` for a 1-D size; store as a (k,) tuple (Keras' own form)."""
    return (value,) if isinstance(value, int) and not isinstance(value, bool) else value


def refuse_strided_dilation(strides: tuple[int, ...], dilation: tuple[int, ...]) -> None:
    """Keras refuses strides > 1 with dilation_rate > 1 (TensorFlow's kernels lack it)."""
    if max(strides) > 1 and max(dilation) > 1:
        raise ValueError(f"strides {list(strides)} > 1 together with dilation_rate "
                         f"{list(dilation)} > 1 is not supported (Keras refuses it); "
                         "use one or the other")


def _pair_label(kind: str, pair: tuple[int, ...]) -> str:
    return "" if set(pair) == {1} else f" {kind}{'x'.join(map(str, pair))}"


class _Window2D(LayerSpec):
    """What the 2-D convolutions share (each declares its own fields, in its dump order):
    kernel_size, strides, padding, dilation_rate, activation."""

    @field_validator("kernel_size", "strides", "dilation_rate", mode="before", check_fields=False)
    @classmethod
    def _int_or_pair(cls, value: Any) -> Any:
        return int_or_pair(value)

    @model_validator(mode="after")
    def _strides_or_dilation(self) -> _Window2D:
        refuse_strided_dilation(self.strides, self.dilation_rate)  # type: ignore[attr-defined]
        return self

    def _window(self, shape: Shape) -> tuple[Shape, Any]:
        return window_2d(self.type, shape, self.kernel_size, self.strides, self.padding,
                         self.dilation_rate)

    def positions(self, out: Inferred) -> int:
        return out.shape[0] * out.shape[1]

    def _label(self, width: str) -> str:
        kh, kw = self.kernel_size
        stride = "" if self.strides == (1, 1) else f" /{self.strides[0]}x{self.strides[1]}"
        return (f"{self.type} {width} {kh}x{kw}{stride}{_pair_label('dil', self.dilation_rate)}"
                f" {self.padding} {self.activation}")


class Conv2D(_Window2D):
    """2-D convolution on a channels-last image. 'same' pads like TensorFlow (extra at the end).
    `groups` splits the channels into independent convolutions (Keras' `groups`)."""

    type: Literal["conv2d"]
    filters: StrictInt = Field(gt=0)
    kernel_size: PositivePair
    strides: PositivePair = (1, 1)
    padding: Padding = "valid"
    activation: Activation = "linear"
    use_bias: StrictBool = True
    kernel_initializer: Initializer = GlorotUniform()
    bias_initializer: Initializer = Zeros()
    dilation_rate: PositivePair = (1, 1)
    groups: StrictInt = Field(1, gt=0)

    # added with issue 29: left out of dumps at their defaults, so older specs keep their hash
    optional_fields: ClassVar[tuple[str, ...]] = ("dilation_rate", "groups")

    @model_validator(mode="after")
    def _filters_in_groups(self) -> Conv2D:
        if self.filters % self.groups:
            raise ValueError(f"filters ({self.filters}) must be divisible by groups "
                             f"({self.groups})")
        return self

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        out, padding = self._window(shapes[0])
        if out[2] % self.groups:
            problems.append(("groups", f"the input's {out[2]} channels must be divisible by "
                                       f"groups ({self.groups})"))
        return Inferred((out[0], out[1], self.filters), padding)

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        kh, kw = self.kernel_size
        kernel = WeightSpec("kernel", (kh, kw, shapes[0][2] // self.groups, self.filters),
                            self.kernel_initializer)
        if not self.use_bias:
            return (kernel,)
        return kernel, WeightSpec("bias", (self.filters,), self.bias_initializer)

    def describe(self) -> str:
        groups = "" if self.groups == 1 else f" g{self.groups}"
        return self._label(str(self.filters)) + groups


class DepthwiseConv2D(_Window2D):
    """Each input channel convolved with its own `depth_multiplier` kernels: output channel
    c * depth_multiplier + m is input channel c's m-th (Keras' and TensorFlow's order)."""

    type: Literal["depthwise_conv2d"]
    kernel_size: PositivePair
    strides: PositivePair = (1, 1)
    padding: Padding = "valid"
    depth_multiplier: StrictInt = Field(1, gt=0, le=1000)
    dilation_rate: PositivePair = (1, 1)
    activation: Activation = "linear"
    use_bias: StrictBool = True
    depthwise_initializer: Initializer = GlorotUniform()
    bias_initializer: Initializer = Zeros()


    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        out, padding = self._window(shapes[0])
        return Inferred((out[0], out[1], out[2] * self.depth_multiplier), padding)

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        kh, kw = self.kernel_size
        # Keras 3 names the depthwise kernel `kernel` (its initializer: depthwise_initializer)
        kernel = WeightSpec("kernel", (kh, kw, shapes[0][2], self.depth_multiplier),
                            self.depthwise_initializer)
        if not self.use_bias:
            return (kernel,)
        return kernel, WeightSpec("bias", (out.shape[2],), self.bias_initializer)

    def describe(self) -> str:
        return self._label(f"x{self.depth_multiplier}")


class SeparableConv2D(_Window2D):
    """A depthwise convolution (no bias) then a 1x1 convolution to `filters` channels, the
    bias and activation after both, as Keras' SeparableConv2D."""

    type: Literal["separable_conv2d"]
    filters: StrictInt = Field(gt=0)
    kernel_size: PositivePair
    strides: PositivePair = (1, 1)
    padding: Padding = "valid"
    depth_multiplier: StrictInt = Field(1, gt=0, le=1000)
    dilation_rate: PositivePair = (1, 1)
    activation: Activation = "linear"
    use_bias: StrictBool = True
    depthwise_initializer: Initializer = GlorotUniform()
    pointwise_initializer: Initializer = GlorotUniform()
    bias_initializer: Initializer = Zeros()


    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        out, padding = self._window(shapes[0])
        return Inferred((out[0], out[1], self.filters), padding)

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        kh, kw = self.kernel_size
        channels = shapes[0][2] * self.depth_multiplier
        arrays = (WeightSpec("depthwise_kernel", (kh, kw, shapes[0][2], self.depth_multiplier),
                             self.depthwise_initializer),
                  WeightSpec("pointwise_kernel", (1, 1, channels, self.filters),
                             self.pointwise_initializer))
        if not self.use_bias:
            return arrays
        return *arrays, WeightSpec("bias", (self.filters,), self.bias_initializer)

    def describe(self) -> str:
        multiplier = "" if self.depth_multiplier == 1 else f" x{self.depth_multiplier}"
        return self._label(str(self.filters)) + multiplier


class Conv1D(LayerSpec):
    """1-D convolution over the steps of a sequence (steps, channels). 'same' pads like
    TensorFlow (the extra step at the end); 'causal' pads (kernel - 1) * dilation steps at the
    start, so step t sees only steps <= t."""

    type: Literal["conv1d"]
    filters: StrictInt = Field(gt=0)
    kernel_size: Single
    strides: Single = (1,)
    padding: Literal["valid", "same", "causal"] = "valid"
    dilation_rate: Single = (1,)
    activation: Activation = "linear"
    use_bias: StrictBool = True
    kernel_initializer: Initializer = GlorotUniform()
    bias_initializer: Initializer = Zeros()

    @field_validator("kernel_size", "strides", "dilation_rate", mode="before")
    @classmethod
    def _int_or_single(cls, value: Any) -> Any:
        return int_or_single(value)

    @model_validator(mode="after")
    def _strides_or_dilation(self) -> Conv1D:
        refuse_strided_dilation(self.strides, self.dilation_rate)
        return self

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        needs_rank(shapes[0], (2,), "conv1d")
        (k,), (s,), (d,) = self.kernel_size, self.strides, self.dilation_rate
        steps = shapes[0][0]
        if self.padding == "causal":  # the valid window over the left-padded sequence
            found = window_1d(steps + (k - 1) * d, k, s, "valid", d)
            found = (found[0], (k - 1) * d, 0) if found else None
        else:
            found = window_1d(steps, k, s, self.padding, d)
        if found is None:
            raise ShapeProblem("kernel_size", f"window {k} (dilation {d}) does not fit "
                                              f"{steps} steps with padding 'valid'")
        # the steps are an image's rows for input [28, 28]: their padding is top/bottom
        return Inferred((found[0], self.filters), (found[1], found[2], 0, 0))

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        kernel = WeightSpec("kernel", (self.kernel_size[0], shapes[0][1], self.filters),
                            self.kernel_initializer)
        if not self.use_bias:
            return (kernel,)
        return kernel, WeightSpec("bias", (self.filters,), self.bias_initializer)

    def positions(self, out: Inferred) -> int:
        return out.shape[0]

    def describe(self) -> str:
        stride = "" if self.strides == (1,) else f" /{self.strides[0]}"
        return (f"conv1d {self.filters} k{self.kernel_size[0]}{stride}"
                f"{_pair_label('dil', self.dilation_rate)} {self.padding} {self.activation}")
