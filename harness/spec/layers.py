"""Layer and initializer specs: framework-neutral, validated once when a spec is loaded.

Semantics follow Keras (the zoo's source notebooks were Keras 2.x); every backend maps them
explicitly. Weight layouts are channels-last: a dense kernel is (in, out), a conv kernel is
(kh, kw, c_in, c_out), matching Keras. See docs/specs.md.
"""

from __future__ import annotations

import reprlib
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "gelu")
Activation = Literal[
    "linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "gelu"
]
Padding = Literal["valid", "same"]
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38  # smallest normal float32
# Kernel, pool and stride sizes: far above the 28x28 inputs (shape inference reports sizes
# that do not fit), far below what would overflow a framework's index arithmetic.
MAX_WINDOW = 1000


def _fits_float32(value: float) -> float:
    """The frameworks compute in float32: a value that rounds to inf or 0 there is refused."""
    if value != 0 and not FLOAT32_TINY <= abs(value) <= FLOAT32_MAX:
        raise ValueError(f"{value!r} does not fit a float32 (0, or {FLOAT32_TINY:.3g} to "
                         f"{FLOAT32_MAX:.3g} in magnitude)")
    return value


# Spec numbers: strict (a boolean or a string is not a number) and finite (StrictModel's
# allow_inf_nan=False), floats within float32 range.
Float32 = Annotated[float, Field(strict=True), AfterValidator(_fits_float32)]


class StrictModel(BaseModel):
    """Base for spec models: immutable, unknown fields rejected with the list of allowed ones.

    Numbers are strict (StrictInt, Float32, StrictBool fields) and finite: `seed: true`,
    `epochs: "1"` and `scale: .inf` are errors, not 1, 1 and a model trained on zeros.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = set(cls.model_fields)
            unknown = [k for k in data if k not in allowed]
            if unknown:
                raise ValueError(
                    f"unknown field {reprlib.repr(unknown[0])}; allowed fields: "
                    f"{sorted(allowed)}"
                )
        return data


# --------------------------------------------------------------------------- initializers


class GlorotUniform(StrictModel):
    """Xavier uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)). Keras' default kernel init."""

    name: Literal["glorot_uniform"] = "glorot_uniform"


class GlorotNormal(StrictModel):
    """Keras glorot_normal: truncated normal (2 std), stddev sqrt(2 / (fan_in + fan_out))."""

    name: Literal["glorot_normal"]


class HeNormal(StrictModel):
    """Keras he_normal: truncated normal (2 std), stddev sqrt(2 / fan_in)."""

    name: Literal["he_normal"]


class HeUniform(StrictModel):
    """Keras he_uniform: U(-l, l), l = sqrt(6 / fan_in)."""

    name: Literal["he_uniform"]


class LecunNormal(StrictModel):
    """Keras lecun_normal: truncated normal (2 std), stddev sqrt(1 / fan_in)."""

    name: Literal["lecun_normal"]


class LecunUniform(StrictModel):
    """Keras lecun_uniform: U(-l, l), l = sqrt(3 / fan_in)."""

    name: Literal["lecun_uniform"]


class Normal(StrictModel):
    """Plain (untruncated) normal, like keras.initializers.RandomNormal."""

    name: Literal["normal"]
    mean: Float32 = 0.0
    stddev: Float32 = Field(0.05, gt=0)


class TruncatedNormal(StrictModel):
    """Normal re-drawn outside mean +/- 2 stddev, like keras.initializers.TruncatedNormal."""

    name: Literal["truncated_normal"]
    mean: Float32 = 0.0
    stddev: Float32 = Field(0.05, gt=0)


class Uniform(StrictModel):
    """U(minval, maxval), like keras.initializers.RandomUniform."""

    name: Literal["uniform"]
    minval: Float32 = -0.05
    maxval: Float32 = 0.05

    @model_validator(mode="after")
    def _check_range(self) -> Uniform:
        if self.maxval <= self.minval:
            raise ValueError(f"maxval ({self.maxval}) must be greater than minval ({self.minval})")
        return self


class Zeros(StrictModel):
    name: Literal["zeros"] = "zeros"


class Ones(StrictModel):
    name: Literal["ones"]


class Constant(StrictModel):
    name: Literal["constant"]
    value: Float32


Initializer = Annotated[
    GlorotUniform | GlorotNormal | HeNormal | HeUniform | LecunNormal | LecunUniform
    | Normal | TruncatedNormal | Uniform | Zeros | Ones | Constant,
    Field(discriminator="name"),
]


def _initializer_shorthand(value: Any) -> Any:
    """Allow `kernel_initializer: he_normal` as well as `{name: normal, stddev: 0.05}`."""
    return {"name": value} if isinstance(value, str) else value


# --------------------------------------------------------------------------- layers


def _pair(value: Any) -> Any:
    """Accept `3` or `[3, 3]` for kernel/pool/stride sizes; store as a (h, w) tuple."""
    if isinstance(value, bool):
        return value  # let pydantic reject it with a type error
    if isinstance(value, int):
        return (value, value)
    return value


WindowSize = Annotated[StrictInt, Field(gt=0, le=MAX_WINDOW)]
PositivePair = tuple[WindowSize, WindowSize]


class Dense(StrictModel):
    """Fully connected layer on a flat input; `activation` runs right after the affine step."""

    type: Literal["dense"]
    units: StrictInt = Field(gt=0)
    activation: Activation = "linear"
    use_bias: StrictBool = True
    kernel_initializer: Initializer = GlorotUniform()
    bias_initializer: Initializer = Zeros()

    @field_validator("kernel_initializer", "bias_initializer", mode="before")
    @classmethod
    def initializer_shorthand(cls, value: Any) -> Any:
        return _initializer_shorthand(value)


class Conv2D(StrictModel):
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
    def int_or_pair(cls, value: Any) -> Any:
        return _pair(value)
    @field_validator("kernel_initializer", "bias_initializer", mode="before")
    @classmethod
    def initializer_shorthand(cls, value: Any) -> Any:
        return _initializer_shorthand(value)


class _Pool2D(StrictModel):
    pool_size: PositivePair = (2, 2)
    strides: PositivePair | None = None  # None means strides = pool_size (Keras)
    padding: Padding = "valid"

    @field_validator("pool_size", "strides", mode="before")
    @classmethod
    def int_or_pair(cls, value: Any) -> Any:
        return _pair(value)

    @property
    def resolved_strides(self) -> tuple[int, int]:
        return self.strides if self.strides is not None else self.pool_size


class MaxPool2D(_Pool2D):
    type: Literal["maxpool2d"]


class AvgPool2D(_Pool2D):
    """Average pooling; with 'same' padding the padded cells are not counted (TensorFlow)."""

    type: Literal["avgpool2d"]


class Dropout(StrictModel):
    """Inverted dropout: `rate` is the fraction dropped; element-wise also on images."""

    type: Literal["dropout"]
    rate: Float32 = Field(ge=0.0, lt=1.0)


class BatchNorm(StrictModel):
    """Batch normalization over the last axis (features, or channels of an image).

    `momentum` uses the Keras convention: moving = momentum * moving + (1 - momentum) * batch.
    (PyTorch's momentum is 1 - this.) Both fields are required so a spec states them.
    """

    type: Literal["batchnorm"]
    momentum: Float32 = Field(gt=0.0, lt=1.0)
    epsilon: Float32 = Field(gt=0.0)


class ActivationLayer(StrictModel):
    type: Literal["activation"]
    activation: Activation


class Flatten(StrictModel):
    """Flattens an image in channels-last (H, W, C) row-major order, as Keras does."""

    type: Literal["flatten"]


Layer = Annotated[
    Dense | Conv2D | MaxPool2D | AvgPool2D | Dropout | BatchNorm | ActivationLayer | Flatten,
    Field(discriminator="type"),
]

LAYER_TYPES = ("dense", "conv2d", "maxpool2d", "avgpool2d", "dropout", "batchnorm", "activation",
               "flatten")
