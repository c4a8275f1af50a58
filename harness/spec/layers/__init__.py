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
from harness.spec.layers.conv import Conv2D
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
    initializer_shorthand,
)
from harness.spec.layers.merge import Add, Concatenate
from harness.spec.layers.pooling import AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D
from harness.spec.layers.recurrent import GRU, LSTM, UnitForgetBias

# Every layer type, in the order `harness show` and the docs list them: one line each.
LAYER_CLASSES: tuple[type[LayerSpec], ...] = (
    Dense,
    Conv2D,
    MaxPool2D,
    AvgPool2D,
    Dropout,
    BatchNorm,
    ActivationLayer,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    Add,
    Concatenate,
    LSTM,
    GRU,
)

Layer = Annotated[Union[LAYER_CLASSES], Field(discriminator="type")]  # noqa: UP007
LAYER_TYPES: tuple[str, ...] = tuple(
    get_args(cls.model_fields["type"].annotation)[0] for cls in LAYER_CLASSES)

__all__ = [
    "ACTIVATIONS", "FLOAT32_MAX", "FLOAT32_TINY", "LAYER_CLASSES", "LAYER_TYPES", "MAX_WINDOW",
    "MODEL_INPUT", "Activation", "ActivationLayer", "Add", "AvgPool2D", "BatchNorm",
    "Concatenate", "Constant", "Conv2D", "Dense", "Dropout", "Flatten", "Float32",
    "GlobalAvgPool2D", "GlobalMaxPool2D", "GlorotNormal", "GlorotUniform", "HeNormal",
    "HeUniform", "Inferred", "Initializer", "Layer", "LayerSpec", "LecunNormal", "LecunUniform",
    "MaxPool2D", "Normal", "Ones", "Padding", "Padding4", "Shape", "ShapeProblem",
    "StrictModel", "TruncatedNormal", "Uniform", "WeightSpec", "Zeros", "initializer_shorthand",
]
__all__ += ["GRU", "LSTM", "Orthogonal", "UnitForgetBias"]  # the recurrent family
