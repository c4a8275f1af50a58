"""Build a torch module that computes the same function as the Keras model of a spec.

The module takes inputs in the spec's layout, (N, 784) or channels-last (N, 28, 28, 1), so an
exported model has the same interface as Keras'. Images are permuted to NCHW once, a view whose
memory stays channels-last; the memory layout the convolutions run in is the backend's choice
(`TorchBackend(layout=...)`). Layout differences are absorbed by the weight conversion
(`set_canonical` / `get_canonical`), never by transposes in the forward pass.

Each spec layer is built by its entry in `harness.backends.pytorch.layers.BUILDERS`; a chain
spec becomes an nn.Sequential, a graph spec (layers naming their `inputs`) a GraphBody.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from harness.backends.pytorch.layers import ACTIVATIONS, BUILDERS, BuildContext, TorchWeight
from harness.spec import ModelSpec, Weights, infer
from harness.spec import layers as L
from harness.spec.shapes import INPUT_INDEX, LayerInfo, ModelSummary, Shape


class Parts(nn.Sequential):
    """The torch modules of one spec layer in order (pad, conv, activation ...); the first
    takes the layer's inputs (several for a merge layer)."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        modules = iter(self)
        x = next(modules)(*inputs)
        for module in modules:
            x = module(x)
        return x


class GraphBody(nn.Module):
    """The layers of a graph spec: `blocks[i]` is spec layer i, reading the outputs of the
    layers `inputs[i]` names (INPUT_INDEX: the model's input)."""

    def __init__(self, blocks: list[nn.Module], inputs: list[tuple[int, ...]]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.inputs = [tuple(sources) for sources in inputs]

    def __getitem__(self, index: int) -> nn.Module:
        return self.blocks[index]

    def __len__(self) -> int:
        return len(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: dict[int, torch.Tensor] = {INPUT_INDEX: x}
        for index, block in enumerate(self.blocks):
            outputs[index] = block(*(outputs[i] for i in self.inputs[index]))
        return outputs[len(self.blocks) - 1]


class SpecNet(nn.Module):
    """`forward` returns class probabilities; `logits` the input of the final softmax."""

    def __init__(self, body: nn.Module, image_input: bool,
                 weight_table: list[tuple[str, str, TorchWeight]]) -> None:
        super().__init__()
        self.image_input = image_input
        self.body = body  # body[i] is spec layer i (final softmax removed)
        # canonical key -> (path of its tensor in this module, the layer's TorchWeight)
        self.weight_table = weight_table

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_input:
            x = x.permute(0, 3, 1, 2)  # NHWC (spec layout) -> NCHW, once
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)


def _hwc_to_chw(shape: Shape) -> np.ndarray:
    """perm[j] = Keras (H, W, C) flat index of torch's (C, H, W) flat feature j."""
    return np.arange(int(np.prod(shape))).reshape(shape).transpose(2, 0, 1).ravel()


_KEEP_ORDER = (L.Dropout, L.ActivationLayer)  # element-wise: features keep their order


def _orders_once(summary: ModelSummary, keras_order: set[int]
                 ) -> tuple[dict[int, np.ndarray | None], set[int]]:
    """One pass of `flat_feature_orders`: the orders, and the Flattens whose torch order
    reached a layer that cannot absorb it."""
    # per layer output: (permutation, the Flatten that made it) or None (Keras' order)
    carried: dict[int, tuple[np.ndarray, int] | None] = {INPUT_INDEX: None}
    orders: dict[int, np.ndarray | None] = {}
    blocked: set[int] = set()
    for info in summary.layers:
        layer, index = info.layer, info.index
        incoming = carried[info.inputs[0]]
        carried[index] = None
        if isinstance(layer, L.Flatten) and len(info.input_shape) == 3 \
                and index not in keras_order:
            carried[index] = (_hwc_to_chw(info.input_shape), index)
        elif isinstance(layer, L.Dense):
            orders[index] = incoming[0] if incoming else None
        elif isinstance(layer, L.BatchNorm) and len(info.input_shape) == 1:
            orders[index] = incoming[0] if incoming else None
            carried[index] = incoming
        elif isinstance(layer, _KEEP_ORDER):
            carried[index] = incoming
        else:
            blocked |= {c[1] for c in (carried[i] for i in info.inputs) if c is not None}
    final = carried[summary.layers[-1].index]
    if final is not None:  # the model's output must be in Keras' order
        blocked.add(final[1])
    return orders, blocked


def flat_feature_orders(spec: ModelSpec) -> tuple[dict[int, np.ndarray | None], set[int]]:
    """For every dense / flat batchnorm layer, the permutation of its input features (None
    when torch and Keras agree): torch flattens an image in (C, H, W) order, absorbed in the
    weights of the dense layer that reads it. Also the Flattens that must produce Keras' order
    themselves, because their output reaches a layer that cannot absorb it (an add, a
    concatenation, the model's output)."""
    summary = infer(spec)
    keras_order: set[int] = set()
    while True:
        orders, blocked = _orders_once(summary, keras_order)
        if blocked <= keras_order:
            return orders, keras_order
        keras_order |= blocked


def feature_orders(spec: ModelSpec) -> dict[int, np.ndarray | None]:
    return flat_feature_orders(spec)[0]


def _block(info: LayerInfo, context: BuildContext, last: bool
           ) -> tuple[nn.Module, list[tuple[str, TorchWeight]]]:
    """The layer's module and, per canonical array, its tensor's path inside that module."""
    built = BUILDERS[type(info.layer)](info, context)
    parts = list(built.parts)
    activation = getattr(info.layer, "activation", "linear")
    if getattr(info.layer, "activation_inside", False):  # a recurrent cell's own tanh
        activation = "linear"
    if activation != "linear" and not last:  # the last softmax is applied in forward()
        parts.append(("act", ACTIVATIONS[activation]()))
    if len(parts) == 1:
        module: nn.Module = parts[0][1]
        paths = [(weight.attribute, weight) for weight in built.weights]
    else:
        module = Parts(OrderedDict(parts)) if parts else nn.Identity()
        paths = [(f"{weight.part}.{weight.attribute}", weight) for weight in built.weights]
    return module, paths


def build_module(spec: ModelSpec) -> SpecNet:
    """An untrained SpecNet for `spec` (torch's default init; load canonical weights next)."""
    summary = infer(spec)
    orders, keras_order = flat_feature_orders(spec)
    blocks: list[nn.Module] = []
    table: list[tuple[str, str, TorchWeight]] = []
    for info in summary.layers:
        context = BuildContext(orders.get(info.index), info.index in keras_order)
        block, paths = _block(info, context, info.index == len(summary.layers) - 1)
        blocks.append(block)
        prefix = f"body.{info.index}." if summary.is_chain else f"body.blocks.{info.index}."
        table += [(f"{info.index}.{weight.name}", prefix + path, weight)
                  for path, weight in paths]
    body: nn.Module = nn.Sequential(*blocks) if summary.is_chain else GraphBody(
        blocks, [info.inputs for info in summary.layers])
    return SpecNet(body, len(spec.input.shape) == 3, table)


# --------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class Slot:
    """One canonical array and the torch tensor that holds it."""

    key: str
    tensor: torch.Tensor
    to_torch: object
    to_canonical: object


def _tensor(net: nn.Module, path: str) -> torch.Tensor:
    owner, _, name = path.rpartition(".")
    return getattr(net.get_submodule(owner), name)


def slots(spec: ModelSpec, net: SpecNet) -> list[Slot]:
    """Every canonical key of `spec` with its tensor in `net` and the layout converters."""
    return [Slot(key, _tensor(net, path), weight.to_torch, weight.to_canonical)
            for key, path, weight in net.weight_table]


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
