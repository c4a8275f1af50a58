"""Layers that normalize, rearrange or position a tensor: layer normalization, reshape,
permute and a learned positional embedding. Axes are Keras': channels-last, batch excluded."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from harness.spec.layers.base import (
    Float32,
    Inferred,
    LayerSpec,
    Shape,
    ShapeProblem,
    WeightSpec,
    needs_rank,
)
from harness.spec.layers.initializer_specs import (
    GlorotUniform,
    Initializer,
    Ones,
    Zeros,
)

# The ranks a layer's output may have: flat (features), a sequence, an image (H, W, C).
MAX_RANK = 3


class LayerNorm(LayerSpec):
    """Normalization of each example over its last axis (features, or the channels of each
    pixel), as keras.layers.LayerNormalization(axis=-1). `epsilon` is required: Keras'
    default is 1e-3, PyTorch's 1e-5, and the two give other outputs at small variances."""

    type: Literal["layernorm"]
    epsilon: Float32 = Field(gt=0.0)
    center: StrictBool = True
    scale: StrictBool = True

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        return Inferred(shapes[0])

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        features = (shapes[0][-1],)
        # Keras builds gamma before beta
        return ((WeightSpec("gamma", features, Ones(name="ones")),) if self.scale else ()) + (
            (WeightSpec("beta", features, Zeros()),) if self.center else ())

    def describe(self) -> str:
        parts = [f"layernorm eps={self.epsilon:g}"]
        parts += [] if self.center else ["no-center"]
        parts += [] if self.scale else ["no-scale"]
        return " ".join(parts)


def _check_target(value: tuple[int, ...]) -> tuple[int, ...]:
    if any(d == 0 or d < -1 for d in value):
        raise ValueError(f"dimensions must be positive, or -1 for one inferred dimension; "
                         f"got {list(value)}")
    if value.count(-1) > 1:
        raise ValueError(f"at most one dimension may be -1; got {list(value)}")
    return value


class Reshape(LayerSpec):
    """keras.layers.Reshape: the elements of each example, read row-major in channels-last
    order, laid out as `target_shape` (batch excluded; one dimension may be -1)."""

    type: Literal["reshape"]
    target_shape: tuple[StrictInt, ...] = Field(min_length=1, max_length=MAX_RANK)

    @field_validator("target_shape")
    @classmethod
    def _valid_dimensions(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return _check_target(value)

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        size = math.prod(shapes[0])
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape and size % known == 0:
            return Inferred(tuple(size // known if d == -1 else d for d in self.target_shape))
        if -1 not in self.target_shape and known == size:
            return Inferred(self.target_shape)
        raise ShapeProblem("target_shape", f"cannot reshape {shapes[0]} ({size} elements) to "
                                           f"{list(self.target_shape)}")

    def describe(self) -> str:
        return f"reshape {'x'.join(map(str, self.target_shape))}"


class Permute(LayerSpec):
    """keras.layers.Permute: `dims` orders the input's axes, numbered from 1 (batch
    excluded): [2, 1] swaps the steps and features of a sequence."""

    type: Literal["permute"]
    dims: tuple[StrictInt, ...] = Field(min_length=1, max_length=MAX_RANK)

    @field_validator("dims")
    @classmethod
    def _a_permutation(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if sorted(value) != list(range(1, len(value) + 1)):
            raise ValueError(f"must be a permutation of 1..{len(value)} (axes numbered from 1, "
                             f"batch excluded); got {list(value)}")
        return value

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        if len(self.dims) != len(shapes[0]):
            raise ShapeProblem("dims", f"{list(self.dims)} orders {len(self.dims)} axes; the "
                                       f"input {shapes[0]} has {len(shapes[0])}")
        return Inferred(tuple(shapes[0][d - 1] for d in self.dims))

    def describe(self) -> str:
        return f"permute {','.join(map(str, self.dims))}"


class PositionalEmbedding(LayerSpec):
    """A learned (steps, features) array added to a sequence: each step gets its own vector
    (keras_hub's PositionEmbedding, for a sequence as long as the layer's input)."""

    type: Literal["positional_embedding"]
    embeddings_initializer: Initializer = GlorotUniform()


    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        needs_rank(shapes[0], (2,), "positional_embedding")
        return Inferred(shapes[0])

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        return (WeightSpec("embeddings", shapes[0], self.embeddings_initializer),)

    def describe(self) -> str:
        return f"positional_embedding {self.embeddings_initializer.name}"
