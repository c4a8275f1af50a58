"""Keras entries for pooling: max and average windows, global pooling over H and W, or
over the steps of a sequence."""

from __future__ import annotations

from typing import Any

import keras

from harness.backends.keras_common.layers.base import KerasEntry
from harness.backends.keras_common.layers.inverse import spec_fields
from harness.spec import layers as L

_kl = keras.layers


def _default_strides(keras_layer: Any, config: dict[str, Any], data: dict[str, Any]
                     ) -> dict[str, Any]:
    """Keras stores the strides it resolved: strides equal to the pool are the spec's None."""
    if data.get("strides") == data.get("pool_size"):
        data.pop("strides", None)
    return data


def _window(pool: type, spec_cls: type) -> KerasEntry:
    return KerasEntry(lambda info, common: pool(
        pool_size=info.layer.pool_size, strides=info.layer.resolved_strides,
        padding=info.layer.padding, **common),
        keras_classes=(pool,), read=spec_fields(spec_cls, adjust=_default_strides))


def _global(pool: type, spec_cls: type) -> KerasEntry:
    return KerasEntry(lambda info, common: pool(**common), keras_classes=(pool,),
                      read=spec_fields(spec_cls, {"keepdims": False}))


ENTRIES = {
    L.MaxPool2D: _window(_kl.MaxPooling2D, L.MaxPool2D),
    L.AvgPool2D: _window(_kl.AveragePooling2D, L.AvgPool2D),
    L.GlobalAvgPool2D: _global(_kl.GlobalAveragePooling2D, L.GlobalAvgPool2D),
    L.GlobalMaxPool2D: _global(_kl.GlobalMaxPooling2D, L.GlobalMaxPool2D),
    L.GlobalAvgPool1D: _global(_kl.GlobalAveragePooling1D, L.GlobalAvgPool1D),
    L.GlobalMaxPool1D: _global(_kl.GlobalMaxPooling1D, L.GlobalMaxPool1D),
}
