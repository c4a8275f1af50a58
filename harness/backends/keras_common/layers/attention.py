"""Keras entries for attention: self-attention (keras.layers.MultiHeadAttention on one input)
and a transformer encoder block built from MultiHeadAttention, LayerNormalization and Dense.

Both are custom layers registered with Keras (package "harness"), so a saved `.keras` model
loads back. Keras 3 names every MultiHeadAttention variable `kernel` or `bias`; the canonical
names come from the variables' paths (`<layer>/query/kernel` -> `query.kernel`).
"""

from __future__ import annotations

from typing import Any

import keras

from harness.backends.keras_common.layers.base import KerasEntry
from harness.backends.keras_common.layers.inverse import NotInSpec, spec_fields
from harness.spec import layers as L

# Keras' name for the output projection's sub-layer -> the canonical one
_CANONICAL_PART = {"attention_output": "output"}


@keras.saving.register_keras_serializable(package="harness")
class SelfAttention(keras.layers.MultiHeadAttention):
    """keras.layers.MultiHeadAttention with query = key = value = its one input, so that a
    Sequential model can hold it."""

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape, input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:  # type: ignore[override]
        return super().call(inputs, inputs, training=training)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]  # type: ignore[override]
                             ) -> tuple[int | None, ...]:
        return input_shape

    def compute_output_spec(self, inputs: Any, training: bool | None = None  # type: ignore
                            ) -> Any:
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def build_from_config(self, config: dict[str, Any]) -> None:
        if config:
            self.build(config["input_shape"])


@keras.saving.register_keras_serializable(package="harness")
class TransformerEncoderBlock(keras.layers.Layer):
    """Self-attention and an MLP, each a residual branch with a LayerNormalization after the
    sum (post-norm) or at the branch's start (pre-norm, `norm_first`); dropout on attention
    probabilities, on each branch's output and on the MLP's hidden units, as in
    torch.nn.TransformerEncoderLayer."""

    def __init__(self, num_heads: int, key_dim: int, mlp_units: int, mlp_activation: str,
                 norm_first: bool, epsilon: float, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = {"num_heads": num_heads, "key_dim": key_dim, "mlp_units": mlp_units,
                       "mlp_activation": mlp_activation, "norm_first": norm_first,
                       "epsilon": epsilon, "dropout": dropout}
        common = {"dtype": self.dtype_policy}
        self.attention = keras.layers.MultiHeadAttention(
            num_heads, key_dim, dropout=dropout, flash_attention=False, name="attention",
            kernel_initializer="zeros", **common)
        self.norm1 = keras.layers.LayerNormalization(epsilon=epsilon, name="norm1", **common)
        self.norm2 = keras.layers.LayerNormalization(epsilon=epsilon, name="norm2", **common)
        self.mlp1 = keras.layers.Dense(mlp_units, activation=mlp_activation, name="mlp1",
                                       kernel_initializer="zeros", **common)
        self.mlp2: keras.layers.Dense | None = None  # its units are the input's features
        self.dropouts = [keras.layers.Dropout(dropout, **common) for _ in range(3)]
        self.norm_first = norm_first

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        features = input_shape[-1]
        self.mlp2 = keras.layers.Dense(features, name="mlp2", kernel_initializer="zeros",
                                       dtype=self.dtype_policy)
        self.attention.build(input_shape, input_shape)
        for norm in (self.norm1, self.norm2):
            norm.build(input_shape)
        self.mlp1.build(input_shape)
        self.mlp2.build((*input_shape[:-1], self.config["mlp_units"]))

    def _attend(self, x: Any, training: bool | None) -> Any:
        return self.dropouts[0](self.attention(x, x, training=training), training=training)

    def _mlp(self, x: Any, training: bool | None) -> Any:
        hidden = self.dropouts[1](self.mlp1(x), training=training)
        return self.dropouts[2](self.mlp2(hidden), training=training)  # type: ignore[misc]

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = inputs
        if self.norm_first:
            x = x + self._attend(self.norm1(x), training)
            return x + self._mlp(self.norm2(x), training)
        x = self.norm1(x + self._attend(x, training))
        return self.norm2(x + self._mlp(x, training))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.config}


def by_path(keras_layer: keras.layers.Layer) -> dict[str, Any]:
    """Canonical name -> variable: the variable's path below the spec layer, dotted, with
    Keras' `attention_output` called `output` (`model/l0_x/attention_output/kernel` ->
    `output.kernel`)."""
    out = {}
    for variable in keras_layer.weights:
        parts = variable.path.split("/")  # the model's name may come first
        parts = parts[parts.index(keras_layer.name) + 1:]
        out[".".join(_CANONICAL_PART.get(part, part) for part in parts)] = variable
    return out


def _self_attention(info: Any, common: dict[str, Any]) -> keras.layers.Layer:
    layer: L.MultiHeadAttention = info.layer
    # flash_attention=False: Keras' global flash switch must not change the function
    return SelfAttention(layer.num_heads, layer.key_dim, dropout=layer.dropout,
                         use_bias=layer.use_bias, flash_attention=False,
                         kernel_initializer="zeros", bias_initializer="zeros", **common)


def _encoder(info: Any, common: dict[str, Any]) -> keras.layers.Layer:
    layer: L.TransformerEncoder = info.layer
    return TransformerEncoderBlock(layer.num_heads, layer.key_dim, layer.mlp_units,
                                   layer.mlp_activation, layer.norm_first, layer.epsilon,
                                   layer.dropout, **common)


def _plain_heads(keras_layer: Any, config: dict[str, Any], data: dict[str, Any]
                 ) -> dict[str, Any]:
    """The spec's attention projects values to key_dim and back to the input's features."""
    if config.get("value_dim") not in (None, config["key_dim"]):
        raise NotInSpec(f"value_dim={config['value_dim']}: the spec's multihead_attention has "
                        "value_dim = key_dim")
    axes = config.get("attention_axes")  # Keras stores the axes it resolved: all but features
    steps = tuple(range(1, len(keras_layer.input.shape) - 1))
    if axes is not None and tuple(axes) != steps:
        raise NotInSpec(f"attention_axes={axes}: the spec's multihead_attention attends over "
                        f"the steps, attention_axes={steps}")
    return data


ENTRIES = {
    L.MultiHeadAttention: KerasEntry(
        _self_attention, by_path, keras_classes=(SelfAttention,),
        read=spec_fields(L.MultiHeadAttention, {"output_shape": None}, _plain_heads)),
    L.TransformerEncoder: KerasEntry(_encoder, by_path, keras_classes=(TransformerEncoderBlock,),
                                     read=spec_fields(L.TransformerEncoder)),
}
