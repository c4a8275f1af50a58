"""The walk of an ONNX graph from its input to its output, node by node, in the graph's
(topological) order: each operator's handler (harness.importing.onnx_ops) turns its node, and
the nodes it fuses with (a MatMul's bias Add, the nodes of a decomposed GELU), into spec layers.

Nodes that read no data (constants, shape arithmetic such as Shape -> Gather -> Concat feeding
a Reshape) are skipped: the reader takes every shape from ONNX shape inference. A node the
spec cannot express is one problem line; the values it would have computed are "poisoned" so
that it is the only line for its branch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from harness.importing.imported import UnsupportedModel
from harness.importing.onnx_graph import INPUT_REF, Graph, Tensor, describe_node

Handler = Callable[["Walk", Any], None]
# layer types whose `activation` field an activation that follows them can be folded into
HAS_ACTIVATION = ("dense", "conv2d", "depthwise_conv2d", "conv1d")
# the dimensions (after the batch) of the inputs a spec can have, and their layouts
INPUT_LAYOUTS = {(784,): "flat", (1, 28, 28): "nchw", (28, 28, 1): "nhwc", (28, 28): "seq"}


class Walk:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.layers: list[dict[str, Any]] = []
        self.sources: list[list[int]] = []  # the refs each layer reads
        self.heads: dict[int, str] = {}  # layer -> the value that alone carries its output
        self.weights: dict[str, np.ndarray] = {}
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.values: dict[str, Tensor] = {}
        self.poisoned: set[str] = set()
        self.done: set[int] = set()  # ids of nodes fused into an earlier one

    # -- what handlers call ------------------------------------------------------------------
    def add_layer(self, layer: dict[str, Any], sources: list[Tensor],
                  arrays: dict[str, np.ndarray], out_name: str, out: Tensor) -> None:
        """Append `layer` reading `sources`; `out` (its ref is filled in) is `out_name`."""
        index = len(self.layers)
        self.layers.append(layer)
        self.sources.append([source.ref for source in sources])
        for name, array in arrays.items():
            self.weights[f"{index}.{name}"] = np.array(array, dtype=np.float32, order="C")
        self.values[out_name] = Tensor(index, out.layout, out.dims, out.perm)
        self.heads[index] = out_name

    def view(self, old: str, new: str, tensor: Tensor) -> None:
        """`new` holds the same spec tensor as `old` (a transpose, a dropout, a flatten of a
        pooled image): no layer; an activation of `new` may still fold into old's layer."""
        self.values[new] = tensor
        if self.heads.get(tensor.ref) == old and len(self.g.consumers.get(old, [])) == 1 \
                and old != self.g.output.name:
            self.heads[tensor.ref] = new

    def activation(self, nodes: list[Any], x_name: str, activation: str, out_name: str) -> None:
        """`nodes` compute `activation` of `x_name` as `out_name`: into the layer before as its
        `activation` where it has that field, linear, and nothing else reads its output;
        else an activation layer."""
        x = self.values[x_name]
        pattern = {id(node) for node in nodes}
        self.done |= pattern
        layer = self.layers[x.ref] if x.ref != INPUT_REF else None
        if layer is not None and layer["type"] in HAS_ACTIVATION \
                and layer.get("activation", "linear") == "linear" \
                and self.heads.get(x.ref) == x_name and x_name != self.g.output.name \
                and all(id(reader) in pattern for reader in self.g.consumers.get(x_name, [])):
            layer["activation"] = activation
            self.values[out_name] = x
            self.heads[x.ref] = out_name
            return
        self.add_layer({"type": "activation", "activation": activation}, [x], {}, out_name, x)

    def refuse(self, node: Any, why: str) -> None:
        self.problems.append(f"{describe_node(node)}: {why}")
        self.poisoned.update(node.output)

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    def out_dims(self, node: Any, index: int = 0) -> tuple[int, ...] | None:
        dims = self.g.data_dims(node.output[index])
        if dims is None:
            self.refuse(node, "shape inference gives no fixed shape for its output")
        return dims

    # -- the walk ----------------------------------------------------------------------------
    def run(self, handlers: dict[str, Handler]) -> tuple[int, ...]:
        """Walk every node; the spec's input shape. UnsupportedModel with every problem."""
        input_shape = self._start()
        for node in self.g.graph.node:
            if id(node) in self.done:
                continue
            if any(name in self.poisoned for name in node.input):
                self.poisoned.update(node.output)
                continue
            # a subgraph (Loop, If, Scan) may read data without naming it among its inputs
            subgraph = any(a.HasField("g") or len(a.graphs) for a in node.attribute)
            if not subgraph and not any(name in self.values for name in node.input) \
                    or node.op_type in ("Shape", "Size"):
                continue  # a constant, or arithmetic on shapes
            handler = handlers.get(node.op_type)
            if handler is None:
                self.refuse(node, f"the spec has no layer for {node.op_type}; the operators it "
                                  f"reads: {', '.join(sorted(handlers))}")
                continue
            handler(self, node)
        if self.problems:
            raise UnsupportedModel(self.g.path, self.problems)
        return input_shape

    def _start(self) -> tuple[int, ...]:
        if self.g.input.type.tensor_type.elem_type != 1:  # TensorProto.FLOAT
            raise UnsupportedModel(self.g.path, [
                f"input {self.g.input.name!r} is not float32; the spec reads float32 inputs"])
        dims = self.g.data_dims(self.g.input.name)
        layout = INPUT_LAYOUTS.get(dims) if dims is not None else None
        if dims is None or layout is None:
            raise UnsupportedModel(self.g.path, [
                f"input {self.g.input.name!r} has shape {self.g.shapes.get(self.g.input.name)};"
                " a spec reads (batch, 784), (batch, 28, 28) rows, or a 28x28 one-channel "
                "image: (batch, 1, 28, 28) or (batch, 28, 28, 1)"])
        tensor = Tensor(INPUT_REF, layout, dims)
        self.values[self.g.input.name] = tensor
        return tensor.spec_shape

    def finish(self, output_kind: str) -> list[dict[str, Any]]:
        """The spec's layers: a softmax after logits, and the names and `inputs` of a graph."""
        name = self.g.output.name
        out = self.values.get(name)
        if out is None or out.ref == INPUT_REF:
            raise UnsupportedModel(self.g.path, [f"output {name!r} is not computed by layers "
                                                 "from the input"])
        if out.layout not in ("flat", "pooled") or out.perm is not None \
                or out.ref != len(self.layers) - 1:
            raise UnsupportedModel(self.g.path, [
                f"output {name!r} is not the last layer's flat output (layout {out.layout})"])
        if output_kind == "logits":
            last = self.layers[-1]
            if last["type"] in HAS_ACTIVATION and last.get("activation", "linear") == "linear":
                last["activation"] = "softmax"
            else:
                self.add_layer({"type": "activation", "activation": "softmax"}, [out], {},
                               name, out)
            self.note("the model outputs logits: the spec ends in a softmax (it trains with "
                      "categorical cross-entropy on probabilities); the proof compares it with "
                      "softmax of the file's outputs")
        return self._wire()

    def _wire(self) -> list[dict[str, Any]]:
        """Give `inputs` to each layer that does not read the one before it, and `name`s to
        the layers they read."""
        layers = self.layers
        for index, refs in enumerate(self.sources):
            if refs == [index - 1]:  # the input is ref -1 for the first layer
                continue
            names = []
            for ref in refs:
                if ref == INPUT_REF:
                    names.append("input")
                    continue
                layers[ref].setdefault("name", f"{layers[ref]['type']}_{ref}")
                names.append(layers[ref]["name"])
            layers[index]["inputs"] = names
        return layers
