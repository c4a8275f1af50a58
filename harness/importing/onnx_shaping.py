"""The ONNX operators without weights: activations (a decomposed GELU and x * sigmoid(x)
included), flatten and reshape, transposes between layouts, add and concatenate, and the
nodes an inference graph keeps that compute nothing (Dropout, Identity, a Cast to float32)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.importing.onnx_graph import Tensor, attributes, chw_to_hwc_perm
from harness.importing.onnx_ops import to_spec_order
from harness.importing.onnx_walk import Handler, Walk

SIMPLE_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Softplus": "softplus", "Elu": "elu",
                      "Selu": "selu"}
# the attributes Keras' elu and selu have fixed (ONNX's defaults)
FIXED_ATTRIBUTES = {"Elu": {"alpha": 1.0},
                    "Selu": {"alpha": 1.67326319217681884765625,
                             "gamma": 1.05070102214813232421875}}
# layout -> (axis of the channels or features in ONNX, counting the batch)
IMAGE_LAYOUTS = ("nchw", "nhwc")
IMAGE_PERMS = {"nhwc": (3, 1, 2), "nchw": (2, 3, 1)}  # to the other layout, batch left out
CHANNEL_AXIS = {"flat": 1, "pooled": 1, "nchw": 1, "nhwc": 3, "seq": 2, "ncw": 1, "tm": 2}
TRANSPOSES = {("nhwc", (0, 3, 1, 2)): "nchw", ("nchw", (0, 2, 3, 1)): "nhwc",
              ("seq", (0, 2, 1)): "ncw", ("ncw", (0, 2, 1)): "seq",
              # (steps, batch, features), as ONNX's LSTM and GRU read a sequence
              ("seq", (1, 0, 2)): "tm", ("tm", (1, 0, 2)): "seq"}


def simple_activation(walk: Walk, node: Any) -> None:
    attrs = attributes(node)
    for name, wanted in FIXED_ATTRIBUTES.get(node.op_type, {}).items():
        if not math.isclose(attrs.get(name, wanted), wanted, rel_tol=1e-6):
            walk.refuse(node, f"{name} {attrs[name]}: the spec's {node.op_type.lower()} has "
                              f"{name} {wanted:g}")
            return
    walk.activation([node], node.input[0], SIMPLE_ACTIVATIONS[node.op_type], node.output[0])


def gelu(walk: Walk, node: Any) -> None:
    approximate = attributes(node).get("approximate", "none")
    walk.activation([node], node.input[0], "gelu" if approximate == "none" else "gelu_tanh",
                    node.output[0])


def sigmoid(walk: Walk, node: Any) -> None:
    """Sigmoid, or swish where one Mul alone reads it and multiplies it with its input."""
    x_name = node.input[0]
    mul = walk.g.only_consumer(node.output[0], "Mul")
    if mul is not None and x_name in mul.input:
        walk.activation([node, mul], x_name, "swish", mul.output[0])
        return
    walk.activation([node], x_name, "sigmoid", node.output[0])


def _gelu_nodes(walk: Walk, node: Any) -> tuple[list[Any], str] | None:
    """The nodes of x * 0.5 * (1 + erf(x / sqrt(2))) from its first node (Div by sqrt(2), or
    Mul by 1 / sqrt(2)), as torch decomposes F.gelu, and the value it computes."""
    g = walk.g
    x_name = node.input[0]
    factor = g.scalar(node.input[1])
    if factor is None or not math.isclose(factor ** (1 if node.op_type == "Div" else -1),
                                          math.sqrt(2.0), rel_tol=1e-5):
        return None
    erf = g.only_consumer(node.output[0], "Erf")
    add = g.only_consumer(erf.output[0], "Add") if erf is not None else None
    if add is None or not math.isclose(g.scalar(add.input[1]) or g.scalar(add.input[0]) or 0,
                                       1.0, rel_tol=1e-6):
        return None
    nodes, current, scale, has_x = [node, erf, add], add.output[0], 1.0, False
    for _ in range(2):
        mul = g.only_consumer(current, "Mul")
        if mul is None:
            return None
        other = mul.input[1] if mul.input[0] == current else mul.input[0]
        factor = g.scalar(other)
        if other == x_name:
            has_x = True
        elif factor is not None:
            scale *= factor
        else:
            return None
        nodes.append(mul)
        current = mul.output[0]
    if has_x and math.isclose(scale, 0.5, rel_tol=1e-6):
        return nodes, current
    return None


def _per_channel(x: Tensor, value: np.ndarray | None) -> np.ndarray | None:
    """`value` as one number per channel (feature) of `x`, where it broadcasts along the
    channel axis alone (or is one number); else None."""
    if value is None:
        return None
    full = (1, *x.dims)
    axis, channels = CHANNEL_AXIS[x.layout], math.prod(x.spec_shape[-1:])
    if value.size == 1:
        return np.full(channels, value.reshape(-1)[0], dtype=np.float32)
    if value.ndim > len(full):
        return None
    padded = (1,) * (len(full) - value.ndim) + value.shape
    if [i for i, d in enumerate(padded) if d != 1] != [axis] or padded[axis] != channels:
        return None
    return value.reshape(-1)


def _scale_shift(walk: Walk, node: Any) -> bool:
    """x * scale (+ shift), constants per channel: a batch normalization tf2onnx folded, read
    as a batchnorm whose moving mean is 0 and variance 1 - epsilon (gamma = scale, beta =
    shift); False where `node` is not one."""
    data = [name for name in node.input if name in walk.values]
    if node.op_type != "Mul" or len(data) != 1:
        return False
    x = walk.values[data[0]]
    other = node.input[1] if node.input[0] == data[0] else node.input[0]
    scale = _per_channel(x, walk.g.consts.get(other))
    if scale is None:
        return False
    shift, out_name = np.zeros_like(scale), node.output[0]
    add = walk.g.only_consumer(out_name, "Add")
    if add is not None:
        found = _per_channel(x, walk.g.consts.get(
            add.input[1] if add.input[0] == out_name else add.input[0]))
        if found is not None:
            shift, out_name = found, add.output[0]
            walk.done.add(id(add))
    epsilon = 1e-3
    arrays = {"gamma": scale, "beta": shift, "moving_mean": np.zeros_like(scale),
              "moving_variance": np.full_like(scale, 1.0 - epsilon)}
    arrays = {name: to_spec_order(array, x.perm) for name, array in arrays.items()}
    walk.add_layer({"type": "batchnorm", "momentum": 0.99, "epsilon": epsilon}, [x], arrays,
                   out_name, x)
    walk.note("a Mul (and Add) by per-channel constants, a batch normalization folded by its "
              "exporter (tf2onnx), is a batchnorm with moving mean 0 and variance 1 - epsilon, "
              "momentum 0.99 (Keras' default): the same function, not the model's statistics")
    return True


def div_or_mul(walk: Walk, node: Any) -> None:
    """Div and Mul: the first node of a decomposed GELU (a swish's Mul is taken with its
    Sigmoid), or a Mul by per-channel constants (a folded batch normalization)."""
    found = _gelu_nodes(walk, node) if node.input[0] in walk.values else None
    if found is None and _scale_shift(walk, node):
        return
    if found is None:
        walk.refuse(node, f"a {node.op_type} outside the patterns the reader knows (the "
                          "decomposed GELU x * 0.5 * (1 + erf(x / sqrt(2))), x * sigmoid(x), "
                          "x * per-channel constants (+ constants): a folded batch "
                          "normalization)")
        return
    nodes, out_name = found
    walk.activation(nodes, node.input[0], "gelu", out_name)


def softmax(walk: Walk, node: Any) -> None:
    """Softmax over the features; LogSoftmax only as the model's output (the spec ends in a
    softmax; `predict` gives exp of the file's output, the probabilities)."""
    x = walk.values[node.input[0]]
    axis = attributes(node).get("axis", -1)
    if x.layout not in ("flat", "pooled") or x.perm is not None or axis not in (-1, 1):
        walk.refuse(node, "the spec's softmax reads a flat input, over its features")
        return
    if node.op_type == "LogSoftmax":
        if node.output[0] != walk.g.output.name:
            walk.refuse(node, "the spec has LogSoftmax only as the model's output")
            return
        walk.note("the model outputs log-probabilities (LogSoftmax): the spec ends in a "
                  "softmax; the proof compares it with exp of the file's outputs")
    walk.activation([node], node.input[0], "softmax", node.output[0])


def _keeps_order(dims: tuple[int, ...], perm: tuple[int, ...]) -> bool:
    """Whether transposing `dims` by `perm` (axes counted from 1) moves only axes of size 1,
    so that a reshape to the transposed dims is that transpose."""
    moved = [p for p in perm if dims[p - 1] != 1]
    return moved == sorted(moved)


def flatten(walk: Walk, node: Any) -> None:
    """Flatten (axis 1) and a Reshape to (batch, features); a Reshape of a flat 784 input to a
    one-channel image or to rows, an Unsqueeze of rows to a one-channel image; Squeeze of a
    pooled image."""
    x = walk.values[node.input[0]]
    dims = walk.out_dims(node)
    if dims is None:
        return
    if node.op_type == "Flatten" and attributes(node).get("axis", 1) != 1 or x.layout == "tm":
        walk.refuse(node, "the spec flattens everything after the batch (axis 1), the batch "
                          "first")
    elif len(dims) == 1 and x.layout in ("flat", "pooled"):
        walk.view(node.input[0], node.output[0], Tensor(x.ref, "flat", dims, x.perm))
    elif len(dims) == 1:  # a Squeeze too: of a 1x1 image, a sequence of one step
        perm = chw_to_hwc_perm(*x.dims) if x.layout == "nchw" else \
            chw_to_hwc_perm(x.dims[0], x.dims[1], 1) if x.layout == "ncw" else None
        walk.add_layer({"type": "flatten"}, [x], {}, node.output[0],
                       Tensor(0, "flat", dims, perm))
    elif node.op_type == "Reshape" and x.layout in IMAGE_LAYOUTS \
            and dims == tuple(x.dims[p - 1] for p in IMAGE_PERMS[x.layout]) \
            and _keeps_order(x.dims, IMAGE_PERMS[x.layout]):
        # tf2onnx's transpose of a one-channel (or 1x1) image: the same elements in order
        walk.view(node.input[0], node.output[0],
                  Tensor(x.ref, "nchw" if x.layout == "nhwc" else "nhwc", dims))
    elif node.op_type in ("Reshape", "Unsqueeze") and x.layout in ("flat", "seq") \
            and x.perm is None and dims in ((1, 28, 28), (28, 28, 1), (28, 28)):
        # x.view(-1, 1, 28, 28) of a flat input, x.unsqueeze(1) of rows: the same elements
        layout = {3: "nchw" if dims[0] == 1 else "nhwc", 2: "seq"}[len(dims)]
        target = list(Tensor(0, layout, dims).spec_shape)
        walk.add_layer({"type": "reshape", "target_shape": target}, [x], {}, node.output[0],
                       Tensor(0, layout, dims))
    else:
        walk.refuse(node, f"a {node.op_type} of layout {x.layout} {list(x.dims)} to "
                          f"{list(dims)}: the spec flattens, or reshapes a flat 784 input to "
                          "a 28x28 one-channel image or 28 rows")


def transpose(walk: Walk, node: Any) -> None:
    x = walk.values[node.input[0]]
    perm = tuple(attributes(node).get("perm", ()))
    layout = TRANSPOSES.get((x.layout, perm))
    if layout is None:
        walk.refuse(node, f"transpose {list(perm)} of layout {x.layout}: the reader follows "
                          "only NCHW <-> NHWC, a sequence's (steps, features) swap and its "
                          "steps-first form")
        return
    dims = x.dims if perm == (1, 0, 2) else tuple(x.dims[p - 1] for p in perm[1:])
    walk.view(node.input[0], node.output[0], Tensor(x.ref, layout, dims, x.perm))


def merge(walk: Walk, node: Any) -> None:
    """Add of two or more data tensors (a residual); Concat along the channels/features."""
    names = list(node.input)
    if any(name not in walk.values for name in names):
        walk.refuse(node, f"it {'adds' if node.op_type == 'Add' else 'joins'} a constant; "
                          "the spec merges layers' outputs only")
        return
    tensors = [walk.values[name] for name in names]
    first = tensors[0]
    same = all(t.layout == first.layout and (t.perm is None) == (first.perm is None)
               and (t.perm is None or np.array_equal(t.perm, first.perm)) for t in tensors)
    if node.op_type == "Concat":
        axis = attributes(node).get("axis", 1) % (len(first.dims) + 1)
        if not same or first.perm is not None or axis != CHANNEL_AXIS[first.layout]:
            walk.refuse(node, "the spec concatenates along the channels or features of "
                              "inputs of one layout")
            return
        layer = {"type": "concatenate"}
    else:
        if not same or any(t.dims != first.dims for t in tensors):
            walk.refuse(node, "the spec adds inputs of one shape and layout")
            return
        layer = {"type": "add"}
    dims = walk.out_dims(node)
    if dims is not None:
        walk.add_layer(layer, tensors, {}, node.output[0],
                       Tensor(0, first.layout, dims, first.perm))


def passthrough(walk: Walk, node: Any) -> None:
    if node.op_type == "Cast" and attributes(node).get("to") != 1:  # TensorProto.FLOAT
        walk.refuse(node, "a cast to another type than float32; the spec computes in float32")
        return
    walk.view(node.input[0], node.output[0], walk.values[node.input[0]])


HANDLERS_SHAPING: dict[str, Handler] = {
    **{op: simple_activation for op in SIMPLE_ACTIVATIONS}, "Gelu": gelu, "Sigmoid": sigmoid,
    "Div": div_or_mul, "Mul": div_or_mul, "Softmax": softmax, "LogSoftmax": softmax,
    "Flatten": flatten, "Reshape": flatten, "Squeeze": flatten, "Unsqueeze": flatten,
    "Transpose": transpose,
    "Add": merge, "Concat": merge, "Dropout": passthrough, "Identity": passthrough,
    "Cast": passthrough,
}
