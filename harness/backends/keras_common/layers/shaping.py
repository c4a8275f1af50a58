"""Keras entries for layer normalization, reshape, permute and the positional embedding.

Keras has no positional-embedding layer (keras_hub's PositionEmbedding is another package):
`PositionalEmbedding` is a small layer of its own, registered so that a saved model loads
back (and so that Keras on JAX's export, which reloads the saved model in Keras on
TensorFlow, finds it).
"""

from __future__ import annotations

from typing import Any

import keras

from harness.backends.keras_common.layers.base import KerasEntry
from harness.backends.keras_common.layers.inverse import (
    last_axis_only,
    spec_fields,
)
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo

_kl = keras.layers


@keras.saving.register_keras_serializable(package="harness")
class PositionalEmbedding(keras.layers.Layer):
    """Adds a learned (steps, features) array, `embeddings`, to each sequence."""

    def __init__(self, embeddings_initializer: Any = "glorot_uniform", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.embeddings = self.add_weight(name="embeddings", shape=tuple(input_shape[1:]),
                                          initializer=self.embeddings_initializer)

    def call(self, inputs: Any) -> Any:
        return inputs + self.embeddings

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "embeddings_initializer":
                keras.initializers.serialize(self.embeddings_initializer)}


def _positional_embedding(info: LayerInfo, common: dict[str, Any]) -> keras.layers.Layer:
    """Built here, with zeros; the builder then names the spec's initializer on it (like a
    kernel's): the numbers come from the spec's draw in numpy, and Keras on JAX would compile
    a draw of its own for each new shape."""
    keras_layer = PositionalEmbedding(embeddings_initializer="zeros", **common)
    keras_layer.build((None, *info.input_shape))
    return keras_layer


ENTRIES = {
    L.LayerNorm: KerasEntry(lambda info, common: _kl.LayerNormalization(
        axis=-1, epsilon=info.layer.epsilon, center=info.layer.center, scale=info.layer.scale,
        **common), keras_classes=(_kl.LayerNormalization,),
        read=spec_fields(L.LayerNorm, {"rms_scaling": False}, last_axis_only("layernorm"))),
    # the resolved shape: Keras would infer a -1 the same way
    L.Reshape: KerasEntry(lambda info, common: _kl.Reshape(info.output_shape, **common),
                          keras_classes=(_kl.Reshape,), read=spec_fields(L.Reshape)),
    L.Permute: KerasEntry(lambda info, common: _kl.Permute(info.layer.dims, **common),
                          keras_classes=(_kl.Permute,), read=spec_fields(L.Permute)),
    L.PositionalEmbedding: KerasEntry(_positional_embedding,
                                      keras_classes=(PositionalEmbedding,),
                                      read=spec_fields(L.PositionalEmbedding)),
}
