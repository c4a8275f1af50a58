"""Keras entries for the layers that join branches: add and concatenate (last axis)."""

from __future__ import annotations

from typing import Any

import keras

from harness.backends.keras_common.layers.base import KerasEntry
from harness.backends.keras_common.layers.inverse import NotInSpec, spec_fields
from harness.spec import layers as L

_kl = keras.layers



def _last_axis(keras_layer: Any, config: dict[str, Any], data: dict[str, Any]
               ) -> dict[str, Any]:
    rank = len(keras_layer.output.shape)
    if config["axis"] % rank != rank - 1:
        raise NotInSpec(f"axis={config['axis']}: the spec's concatenate joins the last axis only")
    return data


ENTRIES = {
    L.Add: KerasEntry(lambda info, common: _kl.Add(**common), keras_classes=(_kl.Add,),
                      read=spec_fields(L.Add)),
    L.Concatenate: KerasEntry(lambda info, common: _kl.Concatenate(axis=-1, **common),
                              keras_classes=(_kl.Concatenate,),
                              read=spec_fields(L.Concatenate, adjust=_last_axis)),
}
