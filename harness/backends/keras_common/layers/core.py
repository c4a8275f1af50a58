"""Keras entries for the basic layers: dense, dropout, batch normalization, activation,
flatten."""

from __future__ import annotations

import keras

from harness.backends.keras_common.layers.activations import keras_activation
from harness.backends.keras_common.layers.base import KerasEntry, weighted_kwargs
from harness.backends.keras_common.layers.inverse import (
    last_axis_only,
    spec_fields,
)
from harness.spec import layers as L

_kl = keras.layers


ENTRIES = {
    L.Dense: KerasEntry(lambda info, common: _kl.Dense(
        info.layer.units, **common, **weighted_kwargs(info.layer)),
        keras_classes=(_kl.Dense,), read=spec_fields(L.Dense, {"lora_rank": None})),
    L.Dropout: KerasEntry(lambda info, common: _kl.Dropout(info.layer.rate, **common),
                          keras_classes=(_kl.Dropout,),
                          read=spec_fields(L.Dropout, {"noise_shape": None})),
    L.BatchNorm: KerasEntry(lambda info, common: _kl.BatchNormalization(
        axis=-1, momentum=info.layer.momentum, epsilon=info.layer.epsilon, **common),
        keras_classes=(_kl.BatchNormalization,), read=spec_fields(
            L.BatchNorm, {"center": True, "scale": True, "synchronized": False},
            last_axis_only("batchnorm"))),
    L.ActivationLayer: KerasEntry(lambda info, common: _kl.Activation(
        keras_activation(info.layer.activation), **common),
        keras_classes=(_kl.Activation,), read=spec_fields(L.ActivationLayer)),
    L.Flatten: KerasEntry(lambda info, common: _kl.Flatten(**common),
                          keras_classes=(_kl.Flatten,), read=spec_fields(L.Flatten)),
}
