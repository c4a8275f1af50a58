"""The ONNX operators the reader maps to spec layers, and how their weights change layout.

ONNX computes images NCHW; the spec, and its canonical weights (harness.spec.initializers),
are channels-last: conv kernels (O, I/g, kh, kw) -> (kh, kw, I/g, O); depthwise (C*M, 1, kh,
kw) -> (kh, kw, C, M), output channel c*M + m in both; Gemm's B (transB: (out, in)) -> (in,
out). A Flatten of an NCHW image orders its features (C, H, W), the spec's flatten (H, W, C):
the flat tensor carries the permutation (Tensor.perm) and the dense layer that reads it gets
its kernel rows permuted, so the spec computes the same function from its own order. Padding:
none is 'valid'; explicit pads are 'same' only where TensorFlow's SAME puts them (the odd one
at the bottom/right); others are refused (the spec has no padding layer).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.importing.onnx_graph import Tensor, attributes
from harness.importing.onnx_walk import Handler, Walk
from harness.spec.layers.base import ShapeProblem
from harness.spec.layers.windows import window_2d

SQRT2 = math.sqrt(2.0)


def f32(value: float) -> float:
    """A float32 attribute as the shortest decimal that is the same float32 (0.9, not
    0.8999999761581421)."""
    return float(np.format_float_positional(np.float32(value), unique=True))


def to_spec_order(array: np.ndarray, perm: np.ndarray | None) -> np.ndarray:
    """Rows of `array` in ONNX's feature order -> the spec's (row i goes to perm[i])."""
    if perm is None:
        return array
    out = np.empty_like(array)
    out[perm] = array
    return out


def _padding(walk: Walk, node: Any, x: Tensor, kernel: tuple[int, int],
             strides: tuple[int, int], dilation: tuple[int, int]) -> str | None:
    attrs = attributes(node)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("VALID", "SAME_UPPER"):
        return "valid" if auto == "VALID" else "same"
    if auto == "SAME_LOWER":
        walk.refuse(node, "auto_pad SAME_LOWER puts the odd padding first; the spec's 'same' "
                          "puts it last (TensorFlow)")
        return None
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    if not any((top, left, bottom, right)):
        return "valid"
    try:
        _, same = window_2d(node.op_type, x.spec_shape, kernel, strides, "same", dilation)
    except ShapeProblem as problem:
        walk.refuse(node, problem.message)
        return None
    if (top, bottom, left, right) == same:
        return "same"
    walk.refuse(node, f"pads {[top, left, bottom, right]} (top, left, bottom, right) are "
                      f"neither none ('valid') nor TensorFlow's 'same' here "
                      f"{[same[0], same[2], same[1], same[3]]}; the spec has only these two")
    return None


def _pair(values: Any, default: int = 1) -> tuple[int, int]:
    values = list(values) if values is not None else [default, default]
    return int(values[0]), int(values[1])


def conv(walk: Walk, node: Any) -> None:
    x = walk.values[node.input[0]]
    w = walk.g.consts.get(node.input[1])
    bias = walk.g.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if w is None or (len(node.input) > 2 and node.input[2] and bias is None):
        walk.refuse(node, "its weights are not constants of the file")
        return
    if w.ndim == 3:
        conv1d(walk, node, x, w, bias)
        return
    if w.ndim != 4 or x.layout != "nchw":
        walk.refuse(node, f"the spec has 2-D convolutions of NCHW images and 1-D ones of "
                          f"sequences; this one has a {w.ndim - 2}-D kernel on layout {x.layout}")
        return
    attrs = attributes(node)
    kernel, strides = (int(w.shape[2]), int(w.shape[3])), _pair(attrs.get("strides"))
    dilation, group = _pair(attrs.get("dilations")), int(attrs.get("group", 1))
    padding = _padding(walk, node, x, kernel, strides, dilation)
    dims = walk.out_dims(node)
    if padding is None or dims is None:
        return
    channels, filters = x.dims[0], int(w.shape[0])
    window = {"kernel_size": list(kernel), "strides": list(strides), "padding": padding}
    if dilation != (1, 1):
        window["dilation_rate"] = list(dilation)
    if group == channels and group > 1:
        multiplier = filters // channels
        layer = {"type": "depthwise_conv2d", **window, "depth_multiplier": multiplier}
        kernel_array = w.reshape(channels, multiplier, *kernel).transpose(2, 3, 0, 1)
    else:
        layer = {"type": "conv2d", "filters": filters, **window}
        if group > 1:
            layer["groups"] = group
        kernel_array = w.transpose(2, 3, 1, 0)
    layer |= {"activation": "linear", "use_bias": bias is not None}
    arrays = {"kernel": kernel_array} | ({} if bias is None else {"bias": bias})
    walk.add_layer(layer, [x], arrays, node.output[0], Tensor(0, "nchw", dims))


def conv1d(walk: Walk, node: Any, x: Tensor, w: np.ndarray, bias: np.ndarray | None) -> None:
    attrs = attributes(node)
    if x.layout != "ncw" or int(attrs.get("group", 1)) != 1:
        walk.refuse(node, f"a 1-D convolution reads a sequence as (batch, features, steps) "
                          f"without groups; this one reads layout {x.layout}")
        return
    k, stride = int(w.shape[2]), int(attrs.get("strides", [1])[0])
    dilation = int(attrs.get("dilations", [1])[0])
    begin, end = attrs.get("pads", [0, 0])
    steps = x.dims[1]
    total = max((math.ceil(steps / stride) - 1) * stride + (k - 1) * dilation + 1 - steps, 0)
    if attrs.get("auto_pad", "NOTSET") == "VALID" or begin == end == 0:
        padding = "valid"
    elif (begin, end) == (total // 2, total - total // 2):
        padding = "same"
    elif (begin, end) == ((k - 1) * dilation, 0):
        padding = "causal"
    else:
        walk.refuse(node, f"pads {[begin, end]} are none ('valid'), TensorFlow's 'same' "
                          f"{[total // 2, total - total // 2]} or causal; the spec has these")
        return
    dims = walk.out_dims(node)
    if dims is None:
        return
    layer = {"type": "conv1d", "filters": int(w.shape[0]), "kernel_size": [k],
             "strides": [stride], "padding": padding, "activation": "linear",
             "use_bias": bias is not None}
    if dilation != 1:
        layer["dilation_rate"] = [dilation]
    arrays = {"kernel": w.transpose(2, 1, 0)} | ({} if bias is None else {"bias": bias})
    walk.add_layer(layer, [x], arrays, node.output[0], Tensor(0, "ncw", dims))


def pool(walk: Walk, node: Any) -> None:
    x, attrs = walk.values[node.input[0]], attributes(node)
    kind = "maxpool2d" if node.op_type == "MaxPool" else "avgpool2d"
    if x.layout != "nchw":
        walk.refuse(node, f"the spec pools images (NCHW here); this reads layout {x.layout}")
        return
    if len(node.output) > 1 and walk.g.consumers.get(node.output[1]):
        walk.refuse(node, "its indices output is read; the spec's pooling has none")
        return
    if _pair(attrs.get("dilations")) != (1, 1):
        walk.refuse(node, "the spec's pooling has no dilation")
        return
    size, strides = _pair(attrs["kernel_shape"]), _pair(attrs.get("strides"))
    padding = _padding(walk, node, x, size, strides, (1, 1))
    dims = walk.out_dims(node)
    if padding is None or dims is None:
        return
    if kind == "avgpool2d" and padding == "same" and attrs.get("count_include_pad", 0):
        walk.refuse(node, "count_include_pad averages the padded zeros; the spec's 'same' "
                          "average pooling leaves them out (TensorFlow)")
        return
    expected = window_2d(kind, x.spec_shape, size, strides, padding)[0]
    if (dims[1], dims[2]) != expected[:2]:
        walk.refuse(node, f"ceil_mode gives {dims[1]}x{dims[2]}; the spec's pooling rounds "
                          f"down ({expected[0]}x{expected[1]})")
        return
    layer = {"type": kind, "pool_size": list(size), "strides": list(strides),
             "padding": padding}
    walk.add_layer(layer, [x], {}, node.output[0], Tensor(0, "nchw", dims))


def global_pool(walk: Walk, node: Any) -> None:
    """GlobalAveragePool / GlobalMaxPool, and ReduceMean / ReduceMax over the spatial axes (or
    over the steps of a sequence)."""
    x, attrs = walk.values[node.input[0]], attributes(node)
    kind = "avg" if node.op_type in ("GlobalAveragePool", "ReduceMean") else "max"
    if node.op_type.startswith("Global"):
        axes, keep = {2, 3}, True
    else:
        axes_value = attrs.get("axes")
        if axes_value is None and len(node.input) > 1 and node.input[1]:
            axes_value = walk.g.consts.get(node.input[1])
        rank = len(x.dims) + 1
        axes = {int(a) % rank for a in np.asarray(axes_value).reshape(-1)} \
            if axes_value is not None else set(range(rank))
        keep = bool(attrs.get("keepdims", 1))
    spatial = {"nchw": ({2, 3}, "2d"), "nhwc": ({1, 2}, "2d"), "seq": ({1}, "1d"),
               "ncw": ({2}, "1d")}.get(x.layout)
    if spatial is None or axes != spatial[0]:
        walk.refuse(node, f"the spec pools over an image's height and width or a sequence's "
                          f"steps; this reduces axes {sorted(axes)} of layout {x.layout}")
        return
    channels = x.dims[0] if x.layout in ("nchw", "ncw") else x.dims[-1]
    out = Tensor(0, "pooled", walk.g.data_dims(node.output[0]) or (channels,)) if keep \
        else Tensor(0, "flat", (channels,))
    walk.add_layer({"type": f"global_{kind}pool{spatial[1]}"}, [x], {}, node.output[0], out)


def batchnorm(walk: Walk, node: Any) -> None:
    x, attrs = walk.values[node.input[0]], attributes(node)
    arrays = [walk.g.consts.get(name) for name in node.input[1:5]]
    if any(array is None for array in arrays) or attrs.get("training_mode", 0):
        walk.refuse(node, "the spec reads an inference batch normalization: scale, bias, "
                          "mean and variance constants, training_mode 0")
        return
    if x.layout not in ("flat", "pooled", "nchw", "ncw"):  # ONNX normalizes over axis 1
        walk.refuse(node, f"it normalizes axis 1 of layout {x.layout}, not its channels or "
                          "features (the spec's batchnorm: the last axis)")
        return
    if "momentum" in attrs:
        momentum = f32(attrs["momentum"])
    else:
        momentum = 0.9
        walk.note("BatchNormalization without a momentum attribute: momentum 0.9 (ONNX's "
                  "default, PyTorch's default 0.1 in Keras' convention)")
    gamma, beta, mean, variance = (to_spec_order(a.reshape(-1), x.perm) for a in arrays)
    layer = {"type": "batchnorm", "momentum": momentum, "epsilon": f32(attrs.get("epsilon",
                                                                                 1e-5))}
    walk.add_layer(layer, [x], {"gamma": gamma, "beta": beta, "moving_mean": mean,
                                "moving_variance": variance}, node.output[0], x)


def _dense(walk: Walk, node: Any, x: Tensor, kernel: np.ndarray, bias: np.ndarray | None,
           out_name: str) -> None:
    if x.layout not in ("flat", "pooled"):
        walk.refuse(node, f"the spec's dense layer reads a flat input; this reads layout "
                          f"{x.layout} (flatten first)")
        return
    units = int(kernel.shape[1])
    layer = {"type": "dense", "units": units, "activation": "linear",
             "use_bias": bias is not None}
    arrays = {"kernel": to_spec_order(kernel, x.perm)}
    if bias is not None:
        arrays["bias"] = np.broadcast_to(bias.reshape(-1), (units,))
    walk.add_layer(layer, [x], arrays, out_name, Tensor(0, "flat", (units,)))


def gemm(walk: Walk, node: Any) -> None:
    x, attrs = walk.values[node.input[0]], attributes(node)
    b = walk.g.consts.get(node.input[1])
    c = walk.g.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if b is None or attrs.get("transA", 0) or (len(node.input) > 2 and node.input[2]
                                               and c is None):
        walk.refuse(node, "the spec reads Gemm(x, W, b) with constant W and b, x not "
                          "transposed")
        return
    kernel = (b.T if attrs.get("transB", 0) else b) * attrs.get("alpha", 1.0)
    bias = None if c is None else c * attrs.get("beta", 1.0)
    _dense(walk, node, x, kernel, bias, node.output[0])


def matmul(walk: Walk, node: Any) -> None:
    x, w = walk.values.get(node.input[0]), walk.g.consts.get(node.input[1])
    if x is None or w is None or w.ndim != 2:
        walk.refuse(node, "the spec reads MatMul(x, W) with a constant 2-D W (a dense layer)")
        return
    out_name, bias = node.output[0], None
    add = walk.g.only_consumer(out_name, "Add")
    if add is not None:
        other = add.input[1] if add.input[0] == out_name else add.input[0]
        candidate = walk.g.consts.get(other)
        if candidate is not None and candidate.size == w.shape[1]:
            bias, out_name = candidate, add.output[0]
            walk.done.add(id(add))
    _dense(walk, node, x, w, bias, out_name)


HANDLERS_CORE: dict[str, Handler] = {
    "Conv": conv, "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_pool,
    "GlobalMaxPool": global_pool, "ReduceMean": global_pool, "ReduceMax": global_pool,
    "BatchNormalization": batchnorm, "Gemm": gemm, "MatMul": matmul,
}
