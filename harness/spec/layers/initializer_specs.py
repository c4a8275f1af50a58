"""Initializer specs: how a layer's arrays start, by Keras' names and formulas.

The numbers are drawn once, in numpy (`harness.spec.initializers`), and loaded into every
backend, so training starts from identical weights.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.spec.layers.base import Float32, StrictModel


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


class Orthogonal(StrictModel):
    """Keras orthogonal (LSTM's and GRU's default recurrent_initializer): the Q of a normal
    matrix's QR (sign-corrected by R's diagonal) times `gain`. Needs an array of 2 or more
    dimensions, as in Keras: a 1-D bias cannot start orthogonal."""

    name: Literal["orthogonal"]
    gain: Float32 = Field(1.0, gt=0)


Initializer = Annotated[
    GlorotUniform | GlorotNormal | HeNormal | HeUniform | LecunNormal | LecunUniform
    | Normal | TruncatedNormal | Uniform | Zeros | Ones | Constant
    | Orthogonal,
    Field(discriminator="name"),
]
