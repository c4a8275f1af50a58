"""Keras entries for the basic layers: dense, dropout, batch normalization, activation,
flatten."""

from __future__ import annotations

import keras

from harness.backends.keras_common.layers.activations import keras_activation
from harness.backends.keras_common.layers.base import KerasEntry, weighted_kwargs
from harness.spec import layers as L

_kl = keras.layers

ENTRIES = {
    L.Dense: KerasEntry(lambda info, common: _kl.Dense(
        info.layer.units, **common, **weighted_kwargs(info.layer))),
    L.Dropout: KerasEntry(lambda info, common: _kl.Dropout(info.layer.rate, **common)),
    L.BatchNorm: KerasEntry(lambda info, common: _kl.BatchNormalization(
        axis=-1, momentum=info.layer.momentum, epsilon=info.layer.epsilon, **common)),
    L.ActivationLayer: KerasEntry(lambda info, common: _kl.Activation(
        keras_activation(info.layer.activation), **common)),
    L.Flatten: KerasEntry(lambda info, common: _kl.Flatten(**common)),
}
