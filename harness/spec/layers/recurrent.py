"""Recurrent layers on sequences (N, steps, features): LSTM and GRU, as Keras computes them.

Weights are Keras' own: `kernel` (features, gates * units), `recurrent_kernel` (units,
gates * units) and `bias`, the gates in Keras' order: LSTM (i, f, c, o), GRU (z, r, h). A GRU
with `reset_after` (Keras 3's default, and PyTorch's only GRU) has two biases, input and
recurrent, as one (2, 3 * units) array; without it one (3 * units,) input bias.

Only Keras' default activations: tanh for the cell, sigmoid for the gates. PyTorch's fused
LSTM and GRU have no others, so a spec that names another is refused at load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from harness.spec.layers.base import Inferred, LayerSpec, Shape, WeightSpec, needs_rank
from harness.spec.layers.initializer_specs import (
    GlorotUniform,
    Initializer,
    Orthogonal,
    Zeros,
)

# far above what MNIST needs, far below a size whose gate matrices would not fit in memory
MAX_UNITS = 4096


@dataclass(frozen=True)
class UnitForgetBias:
    """An LSTM bias with `unit_forget_bias`: Keras draws `inner` for the input gate's units,
    ones for the forget gate's, `inner` again for the cell's and output gate's."""

    inner: Any  # an Initializer


class _Recurrent(LayerSpec):
    """What LSTM and GRU share. Reads a sequence; gives the last step's output (N, units), or
    every step's (N, steps, units) with `return_sequences`."""

    units: StrictInt = Field(gt=0, le=MAX_UNITS)
    activation: Literal["tanh"] = "tanh"
    recurrent_activation: Literal["sigmoid"] = "sigmoid"
    use_bias: StrictBool = True
    kernel_initializer: Initializer = GlorotUniform()
    recurrent_initializer: Initializer = Orthogonal(name="orthogonal")
    bias_initializer: Initializer = Zeros()

    # the cell applies `activation` itself: the PyTorch builder must not append it
    activation_inside: ClassVar[bool] = True
    gates: ClassVar[int]


    @field_validator("activation", "recurrent_activation", mode="before")
    @classmethod
    def _only_keras_defaults(cls, value: Any, info: Any) -> Any:
        wanted = cls.model_fields[info.field_name].default
        if value != wanted:
            raise ValueError(f"{info.field_name} must be {wanted!r} (got {value!r}): PyTorch's "
                             "nn.LSTM and nn.GRU compute tanh cells and sigmoid gates only")
        return value

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        needs_rank(shapes[0], (2,), self.type)
        steps = shapes[0][0]
        return Inferred((steps, self.units) if self.return_sequences else (self.units,))

    def _bias_shape(self) -> Shape:
        return (self.gates * self.units,)

    def _bias_initializer(self) -> Any:
        return self.bias_initializer

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        width = self.gates * self.units
        arrays = (WeightSpec("kernel", (shapes[0][-1], width), self.kernel_initializer),
                  WeightSpec("recurrent_kernel", (self.units, width),
                             self.recurrent_initializer))
        if not self.use_bias:
            return arrays
        return (*arrays, WeightSpec("bias", self._bias_shape(), self._bias_initializer()))

    def positions(self, out: Inferred) -> int:
        # every step applies the weights once; the steps are known here only when returned
        return out.shape[0] if self.return_sequences else 1

    def _label(self) -> str:
        return f"{self.type} {self.units}" + (" sequences" if self.return_sequences else "")


class LSTM(_Recurrent):
    """Keras' LSTM: gates (i, f, c, o); `unit_forget_bias` starts the forget gate's bias at
    ones (added to whatever bias_initializer draws for the others)."""

    type: Literal["lstm"]
    unit_forget_bias: StrictBool = True
    return_sequences: StrictBool = False
    gates: ClassVar[int] = 4

    def _bias_initializer(self) -> Any:
        return UnitForgetBias(self.bias_initializer) if self.unit_forget_bias \
            else self.bias_initializer

    def describe(self) -> str:
        return self._label()


class GRU(_Recurrent):
    """Keras' GRU: gates (z, r, h). `reset_after` (Keras 3's default) applies the reset gate
    after the recurrent matrix product, with a recurrent bias of its own (PyTorch's GRU);
    without it, before (Keras 2's default, the original GRU), with one bias."""

    type: Literal["gru"]
    reset_after: StrictBool = True
    return_sequences: StrictBool = False
    gates: ClassVar[int] = 3

    def vector_initializers(self) -> tuple[str, ...]:
        return () if self.reset_after else ("bias_initializer",)

    def _bias_shape(self) -> Shape:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def describe(self) -> str:
        return self._label() + ("" if self.reset_after else " reset_before")
