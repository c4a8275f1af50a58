"""Keras entries for pooling: max and average windows, global pooling over H and W, or
over the steps of a sequence."""

from __future__ import annotations

import keras

from harness.backends.keras_common.layers.base import KerasEntry
from harness.spec import layers as L

_kl = keras.layers


def _window(pool: type) -> KerasEntry:
    return KerasEntry(lambda info, common: pool(
        pool_size=info.layer.pool_size, strides=info.layer.resolved_strides,
        padding=info.layer.padding, **common))


ENTRIES = {
    L.MaxPool2D: _window(_kl.MaxPooling2D),
    L.AvgPool2D: _window(_kl.AveragePooling2D),
    L.GlobalAvgPool2D: KerasEntry(lambda info, common: _kl.GlobalAveragePooling2D(**common)),
    L.GlobalMaxPool2D: KerasEntry(lambda info, common: _kl.GlobalMaxPooling2D(**common)),
    L.GlobalAvgPool1D: KerasEntry(lambda info, common: _kl.GlobalAveragePooling1D(**common)),
    L.GlobalMaxPool1D: KerasEntry(lambda info, common: _kl.GlobalMaxPooling1D(**common)),
}
