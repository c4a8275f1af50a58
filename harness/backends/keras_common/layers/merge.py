"""Keras entries for the layers that join branches: add and concatenate (last axis)."""

from __future__ import annotations

import keras

from harness.backends.keras_common.layers.base import KerasEntry
from harness.spec import layers as L

_kl = keras.layers

ENTRIES = {
    L.Add: KerasEntry(lambda info, common: _kl.Add(**common)),
    L.Concatenate: KerasEntry(lambda info, common: _kl.Concatenate(axis=-1, **common)),
}
