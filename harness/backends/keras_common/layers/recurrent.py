"""Keras entries for the recurrent layers: Keras' own LSTM and GRU.

Keras keeps an RNN layer's initializers on its cell, behind read-only properties; the builder
names the spec's initializers on the built layer (`name_spec_initializers`), so these thin
subclasses make the properties settable, forwarding to the cell. They compute exactly what
their parents do, and are registered so a saved `.keras` model loads back.
"""

from __future__ import annotations

from typing import Any

import keras

from harness.backends.keras_common.layers.base import KerasEntry
from harness.backends.keras_common.layers.inverse import spec_fields
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo


def _on_cell(name: str) -> property:
    """A settable property for the cell's attribute `name`."""
    return property(lambda self: getattr(self.cell, name),
                    lambda self, value: setattr(self.cell, name, value))


@keras.saving.register_keras_serializable(package="harness")
class SpecLSTM(keras.layers.LSTM):
    kernel_initializer = _on_cell("kernel_initializer")
    recurrent_initializer = _on_cell("recurrent_initializer")
    bias_initializer = _on_cell("bias_initializer")


@keras.saving.register_keras_serializable(package="harness")
class SpecGRU(keras.layers.GRU):
    kernel_initializer = _on_cell("kernel_initializer")
    recurrent_initializer = _on_cell("recurrent_initializer")
    bias_initializer = _on_cell("bias_initializer")


def _common(layer: Any) -> dict[str, Any]:
    """Variables start at zero (the builder names the spec's initializers afterwards)."""
    return {"activation": layer.activation, "recurrent_activation": layer.recurrent_activation,
            "use_bias": layer.use_bias, "return_sequences": layer.return_sequences,
            "kernel_initializer": "zeros", "recurrent_initializer": "zeros",
            "bias_initializer": "zeros"}


def _lstm(info: LayerInfo, common: dict[str, Any]) -> keras.layers.Layer:
    layer: L.LSTM = info.layer  # type: ignore[assignment]
    return SpecLSTM(layer.units, unit_forget_bias=layer.unit_forget_bias, **_common(layer),
                    **common)


def _gru(info: LayerInfo, common: dict[str, Any]) -> keras.layers.Layer:
    layer: L.GRU = info.layer  # type: ignore[assignment]
    return SpecGRU(layer.units, reset_after=layer.reset_after, **_common(layer), **common)


# what the spec's recurrent layers fix: one output, forwards, no state kept, no dropout
_FIXED = {"return_state": False, "go_backwards": False, "stateful": False, "dropout": 0.0,
          "recurrent_dropout": 0.0}

ENTRIES = {
    L.LSTM: KerasEntry(_lstm, keras_classes=(SpecLSTM, keras.layers.LSTM),
                       read=spec_fields(L.LSTM, _FIXED)),
    L.GRU: KerasEntry(_gru, keras_classes=(SpecGRU, keras.layers.GRU),
                      read=spec_fields(L.GRU, _FIXED)),
}
