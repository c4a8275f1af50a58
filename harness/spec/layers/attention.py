"""Attention layers on sequences (N, steps, features): multi-head self-attention and one
transformer encoder block.

Weights are Keras' own layouts and names: keras.layers.MultiHeadAttention keeps one kernel per
projection with the heads as an axis of their own, query/key/value (features, heads, key_dim)
and output (heads, key_dim, features), biases (heads, key_dim) and (features,). The scores are
scaled by 1/sqrt(key_dim), as in Keras (and in PyTorch, whose head size is key_dim).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, StrictInt

from harness.spec.layers.base import (
    Float32,
    Inferred,
    LayerSpec,
    Shape,
    WeightSpec,
    needs_rank,
)
from harness.spec.layers.initializer_specs import (
    GlorotUniform,
    Initializer,
    Ones,
    Zeros,
)

# Far above what a 28-step sequence needs, far below what would overflow a kernel's size.
MAX_HEADS = 64
MAX_UNITS = 4096


def attention_weights(features: int, num_heads: int, key_dim: int, use_bias: bool,
                      kernel: Initializer, bias: Initializer, prefix: str = ""
                      ) -> tuple[WeightSpec, ...]:
    """keras.layers.MultiHeadAttention's arrays in the order Keras creates (and draws) them."""
    out: list[WeightSpec] = []
    for projection in ("query", "key", "value"):
        out.append(WeightSpec(f"{prefix}{projection}.kernel", (features, num_heads, key_dim),
                              kernel))
        if use_bias:
            out.append(WeightSpec(f"{prefix}{projection}.bias", (num_heads, key_dim), bias))
    out.append(WeightSpec(f"{prefix}output.kernel", (num_heads, key_dim, features), kernel))
    if use_bias:
        out.append(WeightSpec(f"{prefix}output.bias", (features,), bias))
    return tuple(out)


class MultiHeadAttention(LayerSpec):
    """Self-attention: query, key and value are all the input sequence. `dropout` drops
    attention probabilities while training (Keras' and PyTorch's `dropout`)."""

    type: Literal["multihead_attention"]
    num_heads: StrictInt = Field(gt=0, le=MAX_HEADS)
    key_dim: StrictInt = Field(gt=0, le=MAX_UNITS)
    use_bias: StrictBool = True
    dropout: Float32 = Field(0.0, ge=0.0, lt=1.0)
    kernel_initializer: Initializer = GlorotUniform()
    bias_initializer: Initializer = Zeros()

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        needs_rank(shapes[0], (2,), "multihead_attention")
        return Inferred(shapes[0])

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        return attention_weights(shapes[0][-1], self.num_heads, self.key_dim, self.use_bias,
                                 self.kernel_initializer, self.bias_initializer)

    def positions(self, out: Inferred) -> int:
        return out.shape[0]  # every projection is applied at every step

    def describe(self) -> str:
        bias = "" if self.use_bias else " no-bias"
        drop = f" dropout {self.dropout:g}" if self.dropout else ""
        return f"multihead_attention {self.num_heads}x{self.key_dim}{bias}{drop}"


class TransformerEncoder(LayerSpec):
    """One encoder block: self-attention and a two-layer MLP (mlp_units, then back to the
    input's features), each in a residual branch with a layer normalization: after the
    addition (`norm_first: false`, the original post-norm) or at the start of the branch
    (`norm_first: true`, pre-norm). `dropout` drops attention probabilities and each branch's
    output, and the MLP's hidden units, as torch.nn.TransformerEncoderLayer does.

    The MLP's activation is `mlp_activation`, not `activation`: a layer's `activation` field
    means an activation applied to the layer's output, which this block has none of."""

    type: Literal["transformer_encoder"]
    num_heads: StrictInt = Field(gt=0, le=MAX_HEADS)
    key_dim: StrictInt = Field(gt=0, le=MAX_UNITS)
    mlp_units: StrictInt = Field(gt=0, le=MAX_UNITS)
    mlp_activation: Literal["relu", "gelu"] = "relu"
    norm_first: StrictBool = False
    epsilon: Float32 = Field(gt=0.0)
    dropout: Float32 = Field(0.0, ge=0.0, lt=1.0)

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        needs_rank(shapes[0], (2,), "transformer_encoder")
        return Inferred(shapes[0])

    def weights(self, shapes: tuple[Shape, ...], out: Inferred) -> tuple[WeightSpec, ...]:
        features = shapes[0][-1]
        kernel, zeros = GlorotUniform(), Zeros()

        def norm(name: str) -> tuple[WeightSpec, ...]:
            return (WeightSpec(f"{name}.gamma", (features,), Ones(name="ones")),
                    WeightSpec(f"{name}.beta", (features,), zeros))

        return (*attention_weights(features, self.num_heads, self.key_dim, True, kernel, zeros,
                                   prefix="attention."),
                *norm("norm1"),
                WeightSpec("mlp1.kernel", (features, self.mlp_units), kernel),
                WeightSpec("mlp1.bias", (self.mlp_units,), zeros),
                WeightSpec("mlp2.kernel", (self.mlp_units, features), kernel),
                WeightSpec("mlp2.bias", (features,), zeros),
                *norm("norm2"))

    def positions(self, out: Inferred) -> int:
        return out.shape[0]

    def describe(self) -> str:
        norm = "pre-norm" if self.norm_first else "post-norm"
        return (f"transformer_encoder {self.num_heads}x{self.key_dim} mlp {self.mlp_units} "
                f"{self.mlp_activation} {norm} eps={self.epsilon:g}")
