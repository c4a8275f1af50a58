"""The Keras builder entry of every spec layer type: one registry, one dict per family.

A new layer type adds one entry to its family's ENTRIES (or a new family module and one line
here); `harness.backends.keras_common.builder` needs no change. Import through a harness
backend package (`keras_tf`, `keras_jax`, `keras_torch`), which selects the Keras backend.
"""

from __future__ import annotations

from harness.backends.keras_common.layers import (
    attention,
    conv,
    core,
    merge,
    pooling,
    recurrent,
    shaping,
)
from harness.backends.keras_common.layers.base import KerasEntry, by_name

ENTRIES: dict[type, KerasEntry] = {
    **core.ENTRIES,
    **conv.ENTRIES,
    **pooling.ENTRIES,
    **merge.ENTRIES,
    **attention.ENTRIES,
    **shaping.ENTRIES,
    **recurrent.ENTRIES,
}

__all__ = ["ENTRIES", "KerasEntry", "by_name"]
