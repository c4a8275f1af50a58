"""Layer and initializer specs: framework-neutral, validated once when a spec is loaded.

Semantics follow Keras (the zoo's source notebooks were Keras 2.x); every backend maps them
explicitly. Weight layouts are channels-last: a dense kernel is (in, out), a conv kernel is
(kh, kw, c_in, c_out), matching Keras. See docs/specs.md.

A layer type is one `LayerSpec` subclass (in the module of its family) and one line in
`LAYER_CLASSES` below; each backend then adds one builder entry for it.
"""

from __future__ import annotations

from typing import Annotated, Union, get_args

from pydantic import Field

from harness.spec.layers.attention import MultiHeadAttention, TransformerEncoder
from harness.spec.layers.base import (
    ACTIVATIONS,
    FLOAT32_MAX,
    FLOAT32_TINY,
    MAX_WINDOW,
    MODEL_INPUT,
    Activation,
    Float32,
    Inferred,
    LayerSpec,
    Padding,
    Padding4,
    Shape,
    ShapeProblem,
    StrictModel,
    WeightSpec,
)
from harness.spec.layers.conv import Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D
from harness.spec.layers.core import ActivationLayer, BatchNorm, Dense, Dropout, Flatten
from harness.spec.layers.initializer_specs import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Initializer,
    LecunNormal,
    LecunUniform,
    Normal,
    Ones,
    Orthogonal,
    TruncatedNormal,
    Uniform,
    Zeros,
)
from harness.spec.layers.merge import Add, Concatenate
from harness.spec.layers.pooling import (
    AvgPool2D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    MaxPool2D,
)
from harness.spec.layers.recurrent import GRU, LSTM, UnitForgetBias
from harness.spec.layers.shaping import LayerNorm, Permute, PositionalEmbedding, Reshape

# Every layer type, in the order `harness show` and the docs list them: one line each.
LAYER_CLASSES: tuple[type[LayerSpec], ...] = (
    Dense,
    Conv2D,
    DepthwiseConv2D,
    SeparableConv2D,
    Conv1D,
    MaxPool2D,
    AvgPool2D,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    Dropout,
    BatchNorm,
    LayerNorm,
    ActivationLayer,
    Flatten,
    Reshape,
    Permute,
    Add,
    Concatenate,
    PositionalEmbedding,
    MultiHeadAttention,
    TransformerEncoder,
    LSTM,
    GRU,
)

Layer = Annotated[Union[LAYER_CLASSES], Field(discriminator="type")]  # noqa: UP007
LAYER_TYPES: tuple[str, ...] = tuple(
    get_args(cls.model_fields["type"].annotation)[0] for cls in LAYER_CLASSES)

__all__ = [
    "ACTIVATIONS", "FLOAT32_MAX", "FLOAT32_TINY", "GRU", "LAYER_CLASSES", "LAYER_TYPES", "LSTM",
    "MAX_WINDOW", "MODEL_INPUT", "Activation", "ActivationLayer", "Add", "AvgPool2D", "BatchNorm",
    "Concatenate", "Constant", "Conv1D", "Conv2D", "Dense", "DepthwiseConv2D", "Dropout",
    "Flatten", "Float32", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D",
    "GlobalMaxPool2D", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Inferred",
    "Initializer", "Layer", "LayerNorm", "LayerSpec", "LecunNormal", "LecunUniform", "MaxPool2D",
    "MultiHeadAttention", "Normal", "Ones", "Orthogonal", "Padding", "Padding4", "Permute",
    "PositionalEmbedding", "Reshape", "SeparableConv2D", "Shape", "ShapeProblem", "StrictModel",
    "TransformerEncoder", "TruncatedNormal", "Uniform", "UnitForgetBias", "WeightSpec", "Zeros",
]
