"""The basic layers: dense, dropout, batch normalization, activation, flatten."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, StrictBool, StrictInt

from harness.spec.layers.base import (
    Activation,
    Float32,
    Inferred,
    LayerSpec,
    Shape,
    WeightSpec,
)
from harness.spec.layers.initializer_specs import (
    GlorotUniform,
    Initializer,
    Ones,
    Zeros,
)


class Dense(LayerSpec):
    """Fully connected layer on a flat input; `activation` runs right after the affine step."""

    type: Literal["dense"]
    units: StrictInt = Field(gt=0)
    activation: Activation = "linear"
    use_bias: StrictBool = True
    kernel_initializer: Initializer = GlorotUniform()
    bias_initializer: Initializer = Zeros()

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        if len(shapes[0]) != 1:
            problems.append(("type", f"dense needs a flat input; got shape {shapes[0]} "
                                     "(add a flatten layer before it)"))
        return Inferred((self.units,))

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        kernel = WeightSpec("kernel", (math.prod(shapes[0]), self.units), self.kernel_initializer)
        if not self.use_bias:
            return (kernel,)
        return kernel, WeightSpec("bias", (self.units,), self.bias_initializer)

    def describe(self) -> str:
        return f"dense {self.units} {self.activation}"


class Dropout(LayerSpec):
    """Inverted dropout: `rate` is the fraction dropped; element-wise also on images."""

    type: Literal["dropout"]
    rate: Float32 = Field(ge=0.0, lt=1.0)

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        return Inferred(shapes[0])

    def describe(self) -> str:
        return f"dropout {self.rate:g}"


class BatchNorm(LayerSpec):
    """Batch normalization over the last axis (features, or channels of an image).

    `momentum` uses the Keras convention: moving = momentum * moving + (1 - momentum) * batch.
    (PyTorch's momentum is 1 - this.) Both fields are required so a spec states them.
    """

    type: Literal["batchnorm"]
    momentum: Float32 = Field(gt=0.0, lt=1.0)
    epsilon: Float32 = Field(gt=0.0)

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        return Inferred(shapes[0])

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        channels = (shapes[0][-1],)
        return (WeightSpec("gamma", channels, Ones(name="ones")),
                WeightSpec("beta", channels, Zeros()),
                WeightSpec("moving_mean", channels, Zeros(), trainable=False),
                WeightSpec("moving_variance", channels, Ones(name="ones"), trainable=False))

    def describe(self) -> str:
        return f"batchnorm m={self.momentum:g} eps={self.epsilon:g}"


class ActivationLayer(LayerSpec):
    type: Literal["activation"]
    activation: Activation

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        return Inferred(shapes[0])

    def describe(self) -> str:
        return f"activation {self.activation}"


class Flatten(LayerSpec):
    """Flattens an image in channels-last (H, W, C) row-major order, as Keras does."""

    type: Literal["flatten"]

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        return Inferred((math.prod(shapes[0]),))
