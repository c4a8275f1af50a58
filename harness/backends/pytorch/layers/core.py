"""PyTorch entries for the basic layers: dense, dropout, batch normalization, activation,
flatten; and the activations every layer with an `activation` field uses."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from harness.backends.pytorch.layers.base import (
    BuildContext,
    TorchLayer,
    TorchWeight,
    permuted,
)
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
    "elu": lambda: nn.ELU(alpha=1.0),
    "selu": nn.SELU,  # same constants as tf.nn.selu
    "softplus": nn.Softplus,  # torch returns x above 20; exact softplus differs < 1 ulp there
    "gelu": lambda: nn.GELU(approximate="none"),  # keras.activations.gelu: approximate=False
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),  # keras' gelu(x, approximate=True)
    "swish": nn.SiLU,  # x * sigmoid(x): keras.activations.swish (silu)
}


class _KerasBatchNormMixin:
    """Keras' moving variance: moving = m * moving + (1 - m) * var, with the *biased* batch
    variance, where torch's own update uses the unbiased one (n / (n - 1) larger).

    Training still runs torch's fused batch_norm kernel (so timings stay those of idiomatic
    PyTorch); only the variance update is corrected afterwards, in O(channels): torch adds
    (1 - m) * var * n / (n - 1), Keras adds (1 - m) * var, the difference is (increment) / n.
    """

    keras_momentum: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)  # type: ignore[misc]
        self._check_input_dim(x)  # type: ignore[attr-defined]
        n = x.numel() // x.shape[1]
        if n == 1:
            return self._single_value_forward(x)
        m = self.keras_momentum
        # batch_norm keeps its running_var argument for backward: update a copy, not the buffer
        updated = self.running_var.clone()  # type: ignore[attr-defined]
        out = F.batch_norm(x, self.running_mean, updated, self.weight,  # type: ignore[attr-defined]
                           self.bias, True, 1.0 - m, self.eps)  # type: ignore[attr-defined]
        with torch.no_grad():
            old = self.running_var  # type: ignore[attr-defined]
            old.copy_(updated - (updated - m * old) / n)
            self.num_batches_tracked.add_(1)  # type: ignore[attr-defined]
        return out

    def _single_value_forward(self, x: torch.Tensor) -> torch.Tensor:
        """F.batch_norm refuses one value per channel; Keras gives beta (x - mean == 0)."""
        m = self.keras_momentum
        with torch.no_grad():
            mean = x.mean(dim=[0, *range(2, x.dim())])
            self.running_mean.mul_(m).add_(mean * (1.0 - m))  # type: ignore[attr-defined]
            self.running_var.mul_(m)  # type: ignore[attr-defined]  # the batch variance is 0
            self.num_batches_tracked.add_(1)  # type: ignore[attr-defined]
        shape = [1, -1] + [1] * (x.dim() - 2)
        return (x - x) * self.weight.view(shape) + self.bias.view(shape)  # type: ignore


class KerasBatchNorm1d(_KerasBatchNormMixin, nn.BatchNorm1d):
    def __init__(self, features: int, momentum: float, epsilon: float) -> None:
        super().__init__(features, eps=epsilon, momentum=1.0 - momentum)
        self.keras_momentum = momentum


class KerasBatchNorm2d(_KerasBatchNormMixin, nn.BatchNorm2d):
    def __init__(self, features: int, momentum: float, epsilon: float) -> None:
        super().__init__(features, eps=epsilon, momentum=1.0 - momentum)
        self.keras_momentum = momentum


class KerasBatchNormSteps(KerasBatchNorm1d):
    """Over the features of a sequence (N, steps, features): torch normalizes dim 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def dense_kernel(perm: object) -> tuple:
    """Keras (in, out) rows in Keras feature order <-> torch (out, in) in torch order."""
    to_torch, to_keras = permuted(perm)  # type: ignore[arg-type]
    return (lambda a: to_torch(a).T), (lambda w: to_keras(w.T))


def _dense(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.Dense = info.layer  # type: ignore[assignment]
    weights = [TorchWeight("kernel", "linear", "weight", *dense_kernel(ctx.feature_order))]
    if layer.use_bias:
        weights.append(TorchWeight("bias", "linear", "bias"))
    linear = nn.Linear(info.input_shape[0], layer.units, bias=layer.use_bias)
    return TorchLayer([("linear", linear)], tuple(weights))


def _batchnorm(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.BatchNorm = info.layer  # type: ignore[assignment]
    shape = info.input_shape
    cls = {1: KerasBatchNorm1d, 2: KerasBatchNormSteps, 3: KerasBatchNorm2d}[len(shape)]
    convert = permuted(ctx.feature_order)
    weights = tuple(TorchWeight(key, "bn", attribute, *convert)
                    for key, attribute in (("gamma", "weight"), ("beta", "bias"),
                                           ("moving_mean", "running_mean"),
                                           ("moving_variance", "running_var")))
    return TorchLayer([("bn", cls(shape[-1], layer.momentum, layer.epsilon))], weights)


class KerasOrderFlatten(nn.Module):
    """Flattens an NCHW image in Keras' (H, W, C) order, for a consumer that cannot absorb
    torch's (C, H, W) order in its weights (an add or a concatenation of flat vectors)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x.permute(0, 2, 3, 1), 1)


def _flatten(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    if ctx.keras_order and len(info.input_shape) == 3:
        return TorchLayer([("flatten", KerasOrderFlatten())])
    return TorchLayer([("flatten", nn.Flatten())])  # NCHW -> (C, H, W) order: feature_orders


BUILDERS = {
    L.Dense: _dense,
    L.BatchNorm: _batchnorm,
    L.Dropout: lambda info, ctx: TorchLayer([("dropout", nn.Dropout(info.layer.rate))]),
    L.ActivationLayer: lambda info, ctx: TorchLayer([]),  # the activation is appended
    L.Flatten: _flatten,
}
