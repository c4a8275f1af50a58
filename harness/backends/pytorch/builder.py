"""Build a torch module that computes the same function as the Keras model of a spec.

The module takes inputs in the spec's layout, (N, 784) or channels-last (N, 28, 28, 1), so an
exported model has the same interface as Keras'. Images are permuted to NCHW once, a view whose
memory stays channels-last; the memory layout the convolutions run in is the backend's choice
(`TorchBackend(layout=...)`). Layout differences are absorbed by the weight conversion
(`set_canonical` / `get_canonical`), never by transposes in the forward pass.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.spec import ModelSpec, Weights, infer
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo, Shape

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
    "elu": lambda: nn.ELU(alpha=1.0),
    "selu": nn.SELU,  # same constants as tf.nn.selu
    "softplus": nn.Softplus,  # torch returns x above 20; exact softplus differs < 1 ulp there
    "gelu": lambda: nn.GELU(approximate="none"),  # keras.activations.gelu: approximate=False
}


class SpecNet(nn.Module):
    """`forward` returns class probabilities; `logits` the input of the final softmax."""

    def __init__(self, blocks: list[nn.Module], image_input: bool) -> None:
        super().__init__()
        self.image_input = image_input
        self.body = nn.Sequential(*blocks)  # body[i] is spec layer i (final softmax removed)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_input:
            x = x.permute(0, 3, 1, 2)  # NHWC (spec layout) -> NCHW, once
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)


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


class AvgPoolSame(nn.Module):
    """TensorFlow 'same' average pooling with asymmetric padding: padded cells are not counted.

    Zero-pad, average over the full window, then rescale each output by window size / number
    of real cells (a precomputed buffer). Plain Pad/AveragePool/Mul ops, so it exports to ONNX.
    """

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int, int, int], in_hw: tuple[int, int]) -> None:
        super().__init__()
        top, bottom, left, right = padding
        self.pad = nn.ZeroPad2d((left, right, top, bottom))
        self.pool = nn.AvgPool2d(kernel, stride)
        ones = torch.ones(1, 1, *in_hw)
        counts = F.avg_pool2d(self.pad(ones), kernel, stride, divisor_override=1)
        self.register_buffer("scale", (kernel[0] * kernel[1]) / counts, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pad(x)) * self.scale


def _symmetric(padding: tuple[int, int, int, int]) -> bool:
    top, bottom, left, right = padding
    return top == bottom and left == right


def _conv(info: LayerInfo, layer: L.Conv2D) -> list[tuple[str, nn.Module]]:
    top, bottom, left, right = info.padding
    parts: list[tuple[str, nn.Module]] = []
    if not _symmetric(info.padding):  # TF puts the odd row/col at the bottom/right
        parts.append(("pad", nn.ZeroPad2d((left, right, top, bottom))))
        top = left = 0
    conv = nn.Conv2d(info.input_shape[2], layer.filters, layer.kernel_size, layer.strides,
                     padding=(top, left), bias=layer.use_bias)
    return [*parts, ("conv", conv)]


def _pool(info: LayerInfo, layer: L.MaxPool2D | L.AvgPool2D) -> list[tuple[str, nn.Module]]:
    kernel, stride = layer.pool_size, layer.resolved_strides
    top, bottom, left, right = info.padding
    if isinstance(layer, L.AvgPool2D):
        if _symmetric(info.padding):
            return [("pool", nn.AvgPool2d(kernel, stride, (top, left), count_include_pad=False))]
        return [("pool", AvgPoolSame(kernel, stride, info.padding, info.input_shape[:2]))]
    if _symmetric(info.padding):  # torch's implicit max-pool padding is -inf
        return [("pool", nn.MaxPool2d(kernel, stride, (top, left)))]
    return [("pad", nn.ConstantPad2d((left, right, top, bottom), float("-inf"))),
            ("pool", nn.MaxPool2d(kernel, stride))]


def _core(info: LayerInfo) -> list[tuple[str, nn.Module]]:
    layer, shape = info.layer, info.input_shape
    if isinstance(layer, L.Dense):
        return [("linear", nn.Linear(shape[0], layer.units, bias=layer.use_bias))]
    if isinstance(layer, L.Conv2D):
        return _conv(info, layer)
    if isinstance(layer, (L.MaxPool2D, L.AvgPool2D)):
        return _pool(info, layer)
    if isinstance(layer, L.BatchNorm):
        cls = KerasBatchNorm2d if len(shape) == 3 else KerasBatchNorm1d
        return [("bn", cls(shape[-1], layer.momentum, layer.epsilon))]
    if isinstance(layer, L.Dropout):
        return [("dropout", nn.Dropout(layer.rate))]
    if isinstance(layer, L.Flatten):
        return [("flatten", nn.Flatten())]  # NCHW -> (C, H, W) order; see feature_orders
    if isinstance(layer, L.ActivationLayer):
        return []
    raise TypeError(f"unhandled layer type {type(layer).__name__}")  # pragma: no cover


def _block(info: LayerInfo, last: bool) -> nn.Module:
    parts = _core(info)
    activation = getattr(info.layer, "activation", "linear")
    if activation != "linear" and not last:  # the last softmax is applied in forward()
        parts.append(("act", _ACTIVATIONS[activation]()))
    if not parts:
        return nn.Identity()
    return parts[0][1] if len(parts) == 1 else nn.Sequential(OrderedDict(parts))


def build_module(spec: ModelSpec) -> SpecNet:
    """An untrained SpecNet for `spec` (torch's default init; load canonical weights next)."""
    infos = infer(spec).layers
    blocks = [_block(info, info.index == len(infos) - 1) for info in infos]
    return SpecNet(blocks, image_input=len(spec.input.shape) == 3)


# --------------------------------------------------------------------------- weights


def _hwc_to_chw(shape: Shape) -> np.ndarray:
    """perm[j] = Keras (H, W, C) flat index of torch's (C, H, W) flat feature j."""
    return np.arange(int(np.prod(shape))).reshape(shape).transpose(2, 0, 1).ravel()


def feature_orders(spec: ModelSpec) -> dict[int, np.ndarray | None]:
    """For every dense / batchnorm layer, the permutation of its flat input features (None when
    torch and Keras agree): after an image Flatten, until the next Dense consumes it."""
    orders: dict[int, np.ndarray | None] = {}
    perm: np.ndarray | None = None
    for info in infer(spec).layers:
        layer = info.layer
        if isinstance(layer, L.Flatten) and len(info.input_shape) == 3:
            perm = _hwc_to_chw(info.input_shape)
        elif isinstance(layer, L.BatchNorm) and len(info.input_shape) == 1:
            orders[info.index] = perm
        elif isinstance(layer, L.Dense):
            orders[info.index] = perm
            perm = None
    return orders


@dataclass(frozen=True)
class Slot:
    """One canonical array and the torch tensor that holds it."""

    key: str
    tensor: torch.Tensor
    to_torch: Callable[[np.ndarray], np.ndarray]
    to_canonical: Callable[[np.ndarray], np.ndarray]


def _identity(a: np.ndarray) -> np.ndarray:
    return a


def _permuted(perm: np.ndarray | None) -> tuple[Callable, Callable]:
    """Converters for a per-feature vector (BN) reordered from Keras' to torch's order."""
    if perm is None:
        return _identity, _identity

    def back(a: np.ndarray) -> np.ndarray:
        out = np.empty_like(a)
        out[perm] = a
        return out

    return (lambda a: a[perm]), back


def _dense_kernel(perm: np.ndarray | None) -> tuple[Callable, Callable]:
    """Keras (in, out) rows in Keras feature order <-> torch (out, in) in torch order."""
    to_torch, to_keras = _permuted(perm)
    return (lambda a: to_torch(a).T), (lambda w: to_keras(w.T))


def _conv_kernel() -> tuple[Callable, Callable]:
    return (lambda a: a.transpose(3, 2, 0, 1)), (lambda w: w.transpose(2, 3, 1, 0))  # HWIO/OIHW


def _submodule(block: nn.Module, name: str) -> nn.Module:
    return block.get_submodule(name) if isinstance(block, nn.Sequential) else block


def slots(spec: ModelSpec, net: SpecNet) -> list[Slot]:
    """Every canonical key of `spec` with its tensor in `net` and the layout converters."""
    orders = feature_orders(spec)
    result: list[Slot] = []
    for index, layer in enumerate(spec.layers):
        block = net.body[index]
        if isinstance(layer, (L.Dense, L.Conv2D)):
            core = _submodule(block, "linear" if isinstance(layer, L.Dense) else "conv")
            kernel = _dense_kernel(orders[index]) if isinstance(layer, L.Dense) else _conv_kernel()
            result.append(Slot(f"{index}.kernel", core.weight, *kernel))
            if layer.use_bias:
                result.append(Slot(f"{index}.bias", core.bias, _identity, _identity))
        elif isinstance(layer, L.BatchNorm):
            bn = _submodule(block, "bn")
            convert = _permuted(orders.get(index))
            for key, tensor in (("gamma", bn.weight), ("beta", bn.bias),
                                ("moving_mean", bn.running_mean),
                                ("moving_variance", bn.running_var)):
                result.append(Slot(f"{index}.{key}", tensor, *convert))
    return result


def set_canonical(spec: ModelSpec, net: SpecNet, weights: Weights) -> None:
    """Copy canonical (Keras-layout) arrays into `net`. KeyError / ValueError on a mismatch."""
    table = slots(spec, net)
    expected = {slot.key for slot in table}
    missing, extra = expected - set(weights), set(weights) - expected
    if missing or extra:
        raise KeyError(f"weights do not match the model: missing {sorted(missing)}, "
                       f"unexpected {sorted(extra)}")
    with torch.no_grad():
        for slot in table:
            value = np.asarray(weights[slot.key], dtype=np.float32)
            wanted = slot.to_canonical(np.empty(tuple(slot.tensor.shape), np.float32)).shape
            if value.shape != wanted:
                raise ValueError(f"{slot.key}: shape {value.shape} != the model's {wanted}")
            native = np.ascontiguousarray(slot.to_torch(value))
            slot.tensor.copy_(torch.from_numpy(native))


def get_canonical(spec: ModelSpec, net: SpecNet) -> Weights:
    """The arrays of `net` in the canonical layout (numpy copies in the net's dtype)."""
    with torch.no_grad():
        # np.array copies: .numpy() of a CPU tensor shares its memory
        return {slot.key: np.array(slot.to_canonical(slot.tensor.detach().cpu().numpy()),
                                   order="C")
                for slot in slots(spec, net)}
