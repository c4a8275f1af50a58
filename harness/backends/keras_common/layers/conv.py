"""Keras entries for convolutions. 'same' is TensorFlow's padding natively (the extra row or
column at the end)."""

from __future__ import annotations

import keras

from harness.backends.keras_common.layers.base import KerasEntry, weighted_kwargs
from harness.spec import layers as L

_kl = keras.layers

ENTRIES = {
    L.Conv2D: KerasEntry(lambda info, common: _kl.Conv2D(
        info.layer.filters, info.layer.kernel_size, strides=info.layer.strides,
        padding=info.layer.padding, **common, **weighted_kwargs(info.layer))),
}
