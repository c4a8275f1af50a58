"""An ONNX file as the ONNX reader walks it: loaded and checked, its constants as arrays, the
shape of each value, who produces and who reads each value; and the tensors of the walk.

A `Tensor` is one data value of the graph as the spec sees it: the spec layer that computes it
and how its ONNX axes map onto the spec's channels-last ones (`layout`). `onnx` is imported
inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.importing.imported import UnreadableModel, UnsupportedModel

INPUT_REF = -1  # a Tensor computed by no layer: the model's input
# layouts (ONNX's axes after the batch):
#   flat (F,); nchw (C, H, W); nhwc (H, W, C); seq (steps, F); ncw (F, steps), a sequence as
#   torch's Conv1d reads it; tm: a sequence steps first, (steps, batch, F), as ONNX's LSTM reads
#   it (dims: (steps, F)); pooled (C, 1, 1) or (1, 1, C): a global pooling kept its axes


@dataclass(frozen=True)
class Tensor:
    ref: int  # the spec layer that computes it (INPUT_REF: the model's input)
    layout: str
    dims: tuple[int, ...]  # ONNX's dimensions after the batch, in `layout`'s order
    # a flat tensor made by flattening an NCHW image: ONNX's feature i is the spec's (Keras'
    # (H, W, C) order) feature perm[i]; None where the two orders agree
    perm: np.ndarray | None = None

    @property
    def spec_shape(self) -> tuple[int, ...]:
        if self.layout == "nchw":
            channels, height, width = self.dims
            return (height, width, channels)
        if self.layout == "ncw":
            return (self.dims[1], self.dims[0])
        if self.layout == "pooled":
            return (math.prod(self.dims),)
        return self.dims


def chw_to_hwc_perm(channels: int, height: int, width: int) -> np.ndarray | None:
    """perm[i]: where feature i of a flattened (C, H, W) image sits in the (H, W, C) order;
    None where the orders agree (one channel, or a 1x1 image)."""
    perm = np.arange(channels * height * width).reshape(height, width, channels)
    perm = perm.transpose(2, 0, 1).reshape(-1)
    return None if np.array_equal(perm, np.arange(perm.size)) else perm


def load(path: Path) -> Any:
    """The checked model with inferred shapes; UnreadableModel (one line) if it is not one."""
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        return onnx.shape_inference.infer_shapes(model)
    except Exception as error:  # protobuf's DecodeError, the checker's ValidationError, OSError
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UnreadableModel(path, [f"not a readable ONNX model ({type(error).__name__}"
                                     f"{': ' + reason[:200] if reason else ''})"]) from None


def _probe(model: Any, graph_input: Any, consts: dict[str, np.ndarray]
           ) -> dict[str, tuple[tuple[int | None, ...], np.ndarray | None]]:
    """Every node output's dimensions (None: the batch's) from running the model in ONNX
    Runtime at batch sizes 2 and 3 (a fixed batch size: at that one), and the values of those
    computed from constants alone (torch's exporter reorders an LSTM's gates with Slice and
    Concat nodes). Shape inference cannot follow shape arithmetic (Shape -> Slice -> Mul ->
    Reshape) that a run does. Empty where the model does not run (its static shapes are then
    used)."""
    import onnx
    import onnxruntime as ort

    dims = _dims(graph_input)
    if dims is None or not dims or any(d is None for d in dims[1:]) \
            or graph_input.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    listed = {value.name for value in probe.graph.output}
    names = [name for node in probe.graph.node for name in node.output if name]
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names
                              if name not in listed)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(probe.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        outputs = [o.name for o in session.get_outputs()]
        runs = [dict(zip(outputs, session.run(None, {graph_input.name: np.random.default_rng(
            batch).uniform(0, 1, (batch, *dims[1:])).astype(np.float32)}), strict=True))
                for batch in ((2, 3) if not dims[0] else (dims[0],))]
    except Exception:  # a model ONNX Runtime cannot run: static shapes only
        return {}
    dynamic = {graph_input.name}
    for node in model.graph.node:
        if any(name in dynamic for name in node.input):
            dynamic.update(node.output)
    found: dict[str, tuple[tuple[int | None, ...], np.ndarray | None]] = {}
    for name in names:
        first, second = np.asarray(runs[0][name]), np.asarray(runs[-1][name])
        shape = tuple(a if a == b else None for a, b in zip(first.shape, second.shape,
                                                            strict=False))
        found[name] = (shape, None if name in dynamic or name in consts else first)
    return found


def _dims(value: Any) -> tuple[int | None, ...] | None:
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)


class Graph:
    """The main graph of a loaded model, indexed for the walk."""

    def __init__(self, model: Any, path: Path) -> None:
        from onnx import numpy_helper

        self.path = path
        self.graph = graph = model.graph
        self.consts: dict[str, np.ndarray] = {
            init.name: numpy_helper.to_array(init) for init in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute \
                    and node.attribute[0].name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        inputs = [value for value in graph.input if value.name not in self.consts]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise UnsupportedModel(path, [
                f"the graph has {len(inputs)} inputs and {len(graph.output)} outputs; a spec "
                "has one input and one output"])
        self.input, self.output = inputs[0], graph.output[0]
        # a batch size the file fixes (an export without a dynamic batch), else None
        self.batch = (_dims(self.input) or (None,))[0] or None
        self.shapes = {value.name: _dims(value)
                       for value in [*graph.input, *graph.value_info, *graph.output]}
        for name, (dims, value) in _probe(model, self.input, self.consts).items():
            self.shapes[name] = dims
            if value is not None:
                self.consts[name] = value
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def only_consumer(self, name: str, op_type: str) -> Any | None:
        """The node that alone reads `name`, if it is an `op_type`."""
        readers = self.consumers.get(name, [])
        if len(readers) == 1 and readers[0].op_type == op_type \
                and name != self.output.name:
            return readers[0]
        return None

    def scalar(self, name: str) -> float | None:
        """The value of a one-element constant, else None."""
        value = self.consts.get(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def data_dims(self, name: str) -> tuple[int, ...] | None:
        """A value's dimensions after the batch where shape inference knows them all."""
        dims = self.shapes.get(name)
        if dims is None or len(dims) < 1 or any(d is None for d in dims[1:]):
            return None
        return tuple(int(d or 0) for d in dims[1:])


def attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    values = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, list):
            value = [v.decode() if isinstance(v, bytes) else v for v in value]
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def describe_node(node: Any) -> str:
    return f"node {node.name or node.output[0]!r} ({node.op_type})"
