"""What every spec layer is: a strict, immutable model that knows its shapes and weights.

A layer type is one `LayerSpec` subclass: its fields (validated once, at load), its output
shape for given input shapes (`infer`), its weights with their canonical (Keras) shapes and
initializers (`weights`), and a one-line label (`describe`). Shape inference, parameter counts,
initial weights and `harness show` are generic over these, so a new layer type touches no
other spec module; each backend adds one builder entry for it.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictInt,
    model_serializer,
    model_validator,
)

# gelu is the exact (erf) GELU, gelu_tanh its tanh approximation; swish is x * sigmoid(x)
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "gelu",
               "gelu_tanh", "swish")
Activation = Literal[
    "linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "gelu",
    "gelu_tanh", "swish"
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
            allowed = {field.alias or name for name, field in cls.model_fields.items()}
            unknown = [k for k in data if k not in allowed]
            if unknown:
                raise ValueError(
                    f"unknown field {reprlib.repr(unknown[0])}; allowed fields: "
                    f"{sorted(allowed)}"
                )
        return data




def int_or_pair(value: Any) -> Any:
    """Accept `3` or `[3, 3]` for kernel/pool/stride sizes; store as a (h, w) tuple."""
    if isinstance(value, bool):
        return value  # let pydantic reject it with a type error
    if isinstance(value, int):
        return (value, value)
    return value


WindowSize = Annotated[StrictInt, Field(gt=0, le=MAX_WINDOW)]
PositivePair = tuple[WindowSize, WindowSize]
Shape = tuple[int, ...]
Padding4 = tuple[int, int, int, int]  # top, bottom, left, right
MODEL_INPUT = "input"  # what `inputs` calls the model's input
# a layer's name: referred to by later layers' `inputs`
LayerName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=100)]


class ShapeProblem(Exception):
    """A layer that cannot take its input shapes: `field` names the spec field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Inferred:
    """What a layer makes of its input shapes: output shape, and the explicit zero padding of
    a window layer (top, bottom, left, right; TensorFlow's 'same' puts the odd one at the end)."""

    shape: Shape
    padding: Padding4 = (0, 0, 0, 0)


@dataclass(frozen=True)
class WeightSpec:
    """One array of a layer in the canonical (Keras) layout: name as Keras names the variable,
    shape, how it starts, and whether the optimizer trains it (BatchNorm statistics do not)."""

    name: str
    shape: Shape
    initializer: Any  # an Initializer (see initializer_specs); typed loosely to avoid a cycle
    trainable: bool = True


class LayerSpec(StrictModel):
    """Base of every layer type. A layer reads the previous layer's output unless `inputs`
    names others (earlier layers' `name`s, or `input` for the model's input): residual
    additions and concatenations are written so. `name` and `inputs` are left out of a dump
    when unset, so specs written before they existed keep their hashes."""

    type: str
    name: LayerName | None = None
    inputs: tuple[LayerName, ...] | None = Field(None, min_length=1)

    # how many inputs the layer takes: (at least, at most; None = any number)
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    # fields added after schema 1: left out of dumps at their default (hashes stay stable)
    optional_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _initializer_shorthand(cls, data: Any) -> Any:
        """`kernel_initializer: he_normal` stands for `{name: he_normal}`, in every field
        named `*_initializer`."""
        if isinstance(data, dict):
            return {key: {"name": value} if key.endswith("_initializer")
                    and isinstance(value, str) else value for key, value in data.items()}
        return data

    def vector_initializers(self) -> tuple[str, ...]:
        """The initializer fields of 1-D arrays (a layer whose bias is a matrix overrides)."""
        return ("bias_initializer",)

    @model_validator(mode="after")
    def _orthogonal_needs_a_matrix(self) -> Any:
        for field in self.vector_initializers():
            if getattr(getattr(self, field, None), "name", None) == "orthogonal":
                raise ValueError(f"{field}: orthogonal needs an array of 2 or more dimensions "
                                 "(as in Keras); this layer's is 1-D")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_optional(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in ("name", "inputs", *self.optional_fields):
                if key in data and getattr(self, key) == type(self).model_fields[key].default:
                    del data[key]
        return data

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        """The output for these input shapes. A problem after which the output shape is still
        known goes to `problems` as (field, message) so one pass reports them all; one that
        leaves it unknown raises ShapeProblem."""
        raise NotImplementedError

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        """The layer's arrays, in the order their initial values are drawn."""
        return ()

    def positions(self, out: Inferred) -> int:
        """How many times each weight is applied per example (a conv's output positions):
        with the parameter count, about the layer's multiply-accumulates."""
        return 1

    def describe(self) -> str:
        """A short Keras-summary-like label, e.g. 'conv2d 32 3x3 same relu'."""
        return self.type


def needs_rank(shape: Shape, ranks: tuple[int, ...], what: str, field: str = "type") -> None:
    """ShapeProblem unless `shape` has one of `ranks` dimensions (batch not counted)."""
    if len(shape) not in ranks:
        names = {1: "a flat input (features)", 2: "a sequence (steps, features)",
                 3: "an image (H, W, C)"}
        wanted = " or ".join(names[r] for r in ranks)
        raise ShapeProblem(field, f"{what} needs {wanted}; got shape {shape}")
