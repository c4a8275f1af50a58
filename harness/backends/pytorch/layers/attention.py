"""PyTorch entries for attention: multi-head self-attention and a transformer encoder block.

Sequences stay (N, steps, features) (batch first). When num_heads * key_dim == features the
attention is torch's own nn.MultiheadAttention(batch_first=True), whose head size is then
key_dim (so its 1/sqrt(head size) scale is Keras' 1/sqrt(key_dim)); it packs the query, key
and value projections into one in_proj_weight (3E, E), so each canonical Keras kernel
(features, heads, key_dim) is a row block of it, its heads in order (row h * key_dim + k).
Otherwise nn.MultiheadAttention cannot express the layer (its head size is features / heads)
and a module with separate projections and an explicit 1/sqrt(key_dim) scale computes it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.backends.pytorch.layers.base import BuildContext, TorchLayer, TorchWeight
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo


def kernel_in(a: np.ndarray) -> np.ndarray:
    """Keras (features, heads, key_dim) -> torch Linear weight (heads * key_dim, features)."""
    return a.reshape(a.shape[0], -1).T


def kernel_out(a: np.ndarray) -> np.ndarray:
    """Keras (heads, key_dim, features) -> torch Linear weight (features, heads * key_dim)."""
    return a.reshape(-1, a.shape[-1]).T


def flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


class PackedSelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention on one input (query = key = value). The properties are views of
    the packed in_proj tensors, so each canonical array has a tensor of its own to load."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, x, x, need_weights=False)[0]

    def _block(self, packed: torch.Tensor, index: int) -> torch.Tensor:
        return packed[index * self.embed_dim:(index + 1) * self.embed_dim]

    query_weight = property(lambda self: self._block(self.in_proj_weight, 0))
    key_weight = property(lambda self: self._block(self.in_proj_weight, 1))
    value_weight = property(lambda self: self._block(self.in_proj_weight, 2))
    query_bias = property(lambda self: self._block(self.in_proj_bias, 0))
    key_bias = property(lambda self: self._block(self.in_proj_bias, 1))
    value_bias = property(lambda self: self._block(self.in_proj_bias, 2))


class SeparateSelfAttention(nn.Module):
    """Self-attention with heads * key_dim != features: one Linear per projection."""

    def __init__(self, features: int, num_heads: int, key_dim: int, bias: bool,
                 dropout: float) -> None:
        super().__init__()
        inner = num_heads * key_dim
        self.query, self.key, self.value = (nn.Linear(features, inner, bias=bias)
                                            for _ in range(3))
        self.out_proj = nn.Linear(inner, features, bias=bias)
        self.num_heads, self.key_dim, self.dropout = num_heads, key_dim, dropout
        self.scale = 1.0 / math.sqrt(key_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(N, steps, heads * key_dim) -> (N, heads, steps, key_dim)."""
        return x.unflatten(-1, (self.num_heads, self.key_dim)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (self._heads(proj(x)) for proj in (self.query, self.key, self.value))
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).flatten(2))


def attention_module(features: int, num_heads: int, key_dim: int, bias: bool,
                     dropout: float) -> tuple[nn.Module, tuple[TorchWeight, ...]]:
    """The attention module and its canonical arrays, by attribute path inside it."""
    if num_heads * key_dim == features:
        module: nn.Module = PackedSelfAttention(features, num_heads, dropout=dropout, bias=bias,
                                                batch_first=True)
        names = {p: (f"{p}_weight", f"{p}_bias") for p in ("query", "key", "value")}
    else:
        module = SeparateSelfAttention(features, num_heads, key_dim, bias, dropout)
        names = {p: (f"{p}.weight", f"{p}.bias") for p in ("query", "key", "value")}
    weights = []
    for projection, (weight, bias_name) in names.items():
        weights.append(TorchWeight(f"{projection}.kernel", "", weight, kernel_in,
                                   lambda w, s=(features, num_heads, key_dim): w.T.reshape(s)))
        if bias:
            weights.append(TorchWeight(f"{projection}.bias", "", bias_name, flat,
                                       lambda b, s=(num_heads, key_dim): b.reshape(s)))
    weights.append(TorchWeight("output.kernel", "", "out_proj.weight", kernel_out,
                               lambda w, s=(num_heads, key_dim, features): w.T.reshape(s)))
    if bias:
        weights.append(TorchWeight("output.bias", "", "out_proj.bias"))
    return module, tuple(weights)


def _multihead_attention(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.MultiHeadAttention = info.layer  # type: ignore[assignment]
    module, weights = attention_module(info.input_shape[-1], layer.num_heads, layer.key_dim,
                                       layer.use_bias, layer.dropout)
    return TorchLayer([("attention", module)],
                      tuple(TorchWeight(w.name, "attention", w.attribute, w.to_torch,
                                        w.to_canonical) for w in weights))


class EncoderBlock(nn.Module):
    """The block of torch.nn.TransformerEncoderLayer (same sub-module names and order of
    operations), on an attention module that may have separate projections."""

    def __init__(self, layer: L.TransformerEncoder, features: int,
                 attention: nn.Module) -> None:
        super().__init__()
        self.self_attn = attention
        self.norm1 = nn.LayerNorm(features, eps=layer.epsilon)
        self.linear1 = nn.Linear(features, layer.mlp_units)
        self.linear2 = nn.Linear(layer.mlp_units, features)
        self.norm2 = nn.LayerNorm(features, eps=layer.epsilon)
        self.dropout, self.dropout1, self.dropout2 = (nn.Dropout(layer.dropout)
                                                      for _ in range(3))
        # exact gelu: keras.activations.gelu's default (approximate=False)
        self.activation = nn.ReLU() if layer.mlp_activation == "relu" else nn.GELU()
        self.norm_first = layer.norm_first

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout1(self.self_attn(x))

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self._attend(self.norm1(x))
            return x + self._mlp(self.norm2(x))
        x = self.norm1(x + self._attend(x))
        return self.norm2(x + self._mlp(x))


def _transformer_encoder(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.TransformerEncoder = info.layer  # type: ignore[assignment]
    features = info.input_shape[-1]
    attention, attention_weights = attention_module(features, layer.num_heads, layer.key_dim,
                                                    True, layer.dropout)
    block = EncoderBlock(layer, features, attention)
    weights = [TorchWeight(f"attention.{w.name}", "encoder", f"self_attn.{w.attribute}",
                           w.to_torch, w.to_canonical) for w in attention_weights]
    dense = (lambda a: a.T), (lambda w: w.T)
    for name, part in (("mlp1", "linear1"), ("mlp2", "linear2")):
        weights += [TorchWeight(f"{name}.kernel", "encoder", f"{part}.weight", *dense),
                    TorchWeight(f"{name}.bias", "encoder", f"{part}.bias")]
    for norm in ("norm1", "norm2"):
        weights += [TorchWeight(f"{norm}.gamma", "encoder", f"{norm}.weight"),
                    TorchWeight(f"{norm}.beta", "encoder", f"{norm}.bias")]
    return TorchLayer([("encoder", block)], tuple(weights))


BUILDERS = {
    L.MultiHeadAttention: _multihead_attention,
    L.TransformerEncoder: _transformer_encoder,
}
