"""PyTorch entries for layer normalization, reshape, permute and the positional embedding.

The spec's axes are Keras' (channels-last) while an image is NCHW in here: a layer that
moves elements between axes (reshape, permute) or normalizes the channels of each pixel
(layernorm) brings an image to channels-last first, and a result of rank 3 back to NCHW.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.backends.pytorch.layers.base import BuildContext, TorchLayer, TorchWeight
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo

TO_CHANNELS_LAST = (0, 2, 3, 1)  # NCHW -> NHWC
TO_CHANNELS_FIRST = (0, 3, 1, 2)  # NHWC -> NCHW


class KerasLayerNorm(nn.Module):
    """keras.layers.LayerNormalization(axis=-1) with optional gamma (scale) and beta (center):
    over the last axis of a flat input or a sequence, over the channels (dim 1) of an NCHW
    image. nn.LayerNorm cannot hold a beta without a gamma, so this holds its own."""

    def __init__(self, features: int, epsilon: float, scale: bool, center: bool,
                 image: bool) -> None:
        super().__init__()
        self.features, self.epsilon, self.image = features, epsilon, image
        self.weight = nn.Parameter(torch.ones(features)) if scale else None
        self.bias = nn.Parameter(torch.zeros(features)) if center else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image:
            x = x.permute(*TO_CHANNELS_LAST)
        x = F.layer_norm(x, (self.features,), self.weight, self.bias, self.epsilon)
        return x.permute(*TO_CHANNELS_FIRST) if self.image else x


def _layernorm(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.LayerNorm = info.layer  # type: ignore[assignment]
    shape = info.input_shape
    module = KerasLayerNorm(shape[-1], layer.epsilon, layer.scale, layer.center, len(shape) == 3)
    weights = [TorchWeight("gamma", "norm", "weight")] if layer.scale else []
    weights += [TorchWeight("beta", "norm", "bias")] if layer.center else []
    return TorchLayer([("norm", module)], tuple(weights))


class KerasReshape(nn.Module):
    """Keras' row-major reshape of the channels-last elements: an NCHW image is made
    channels-last first (reshaping NCHW memory order directly would mix the channels into
    the rows), and an image result is made NCHW again."""

    def __init__(self, target: tuple[int, ...], image_in: bool) -> None:
        super().__init__()
        self.target, self.image_in = target, image_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_in:
            x = x.permute(*TO_CHANNELS_LAST)
        x = x.reshape(-1, *self.target)  # -1: the batch (ONNX: a constant shape but the batch)
        return x.permute(*TO_CHANNELS_FIRST) if len(self.target) == 3 else x


def _reshape(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    return TorchLayer([("reshape", KerasReshape(info.output_shape, len(info.input_shape) == 3))])


class Permutation(nn.Module):
    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


def torch_permutation(dims: tuple[int, ...]) -> tuple[int, ...]:
    """Keras' `dims` (1-based, batch excluded) as one torch permutation of the tensor as it is
    in here: for an image, NCHW -> NHWC, Keras' permutation, NHWC -> NCHW composed."""
    keras = (0, *dims)
    if len(dims) != 3:
        return keras
    return tuple(TO_CHANNELS_LAST[keras[i]] for i in TO_CHANNELS_FIRST)


def _permute(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.Permute = info.layer  # type: ignore[assignment]
    return TorchLayer([("permute", Permutation(torch_permutation(layer.dims)))])


class PositionalEmbedding(nn.Module):
    """Adds a learned (steps, features) array to each (steps, features) sequence."""

    def __init__(self, steps: int, features: int) -> None:
        super().__init__()
        self.embeddings = nn.Parameter(torch.zeros(steps, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.embeddings


def _positional_embedding(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    steps, features = info.input_shape
    return TorchLayer([("embedding", PositionalEmbedding(steps, features))],
                      (TorchWeight("embeddings", "embedding", "embeddings"),))


BUILDERS = {
    L.LayerNorm: _layernorm,
    L.Reshape: _reshape,
    L.Permute: _permute,
    L.PositionalEmbedding: _positional_embedding,
}
