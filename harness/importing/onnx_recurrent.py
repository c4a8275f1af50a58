"""ONNX's LSTM and GRU as the spec's lstm and gru layers.

Weights: ONNX's W (1, gates * units, features), R (1, gates * units, units) and B (1, 2 *
gates * units: W's biases then R's). ONNX orders an LSTM's gates (i, o, f, c), Keras (i, f, c,
o): the blocks are reordered and transposed to Keras' kernel (features, 4 * units) and
recurrent_kernel (units, 4 * units), and the two biases summed into Keras' one (they are
added to the same gate pre-activations). A GRU's gates are (z, r, h) in both; with
linear_before_reset (PyTorch's only GRU) it is Keras' reset_after, the biases stacked (2, 3 *
units) as Keras keeps them; without it the two sum into Keras' one bias.

The output: torch's exporter reads the last step as Y -> Transpose -> Reshape -> Transpose ->
Gather(step -1), or the final state Y_h -> Squeeze. The reader follows such a chain, each axis
labelled (T steps, D directions, N batch, H units), to (N, H) (the last step) or (N, T, H) or
(T, N, H) (every step: return_sequences; the latter straight into another LSTM or GRU) and
refuses anything else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.importing.onnx_graph import Tensor, attributes
from harness.importing.onnx_walk import Handler, Walk

# ONNX's LSTM gate blocks (i, o, f, c) taken in Keras' order (i, f, c, o)
LSTM_TO_KERAS = [0, 2, 3, 1]
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def _readers(walk: Walk, name: str) -> list[Any]:
    """The nodes that read `name`'s values (a Shape reads only its dimensions)."""
    return [node for node in walk.g.consumers.get(name, []) if node.op_type != "Shape"]


def _is_zeros(walk: Walk, name: str) -> bool:
    """An initial state that is all zeros: a constant, or zeros expanded to the batch."""
    if not name:
        return True
    value = walk.g.consts.get(name)
    if value is not None:
        return not np.any(value)
    node = walk.g.producer.get(name)
    if node is None:
        return False
    if node.op_type == "ConstantOfShape":
        from onnx import numpy_helper

        fill = attributes(node).get("value")
        return fill is None or not np.any(numpy_helper.to_array(fill))
    return node.op_type in ("Expand", "Slice", "Reshape", "Squeeze", "Unsqueeze", "Identity",
                            "Cast") and _is_zeros(walk, node.input[0])


def _weights(walk: Walk, node: Any, units: int) -> dict[str, np.ndarray] | None:
    consts = walk.g.consts
    w, r = consts.get(node.input[1]), consts.get(node.input[2])
    b = consts.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if w is None or r is None or (len(node.input) > 3 and node.input[3] and b is None):
        return None
    w, r = w[0], r[0]
    if node.op_type == "LSTM":
        gates = 4

        def keras(a: np.ndarray) -> np.ndarray:
            return np.concatenate([np.split(a, gates)[i] for i in LSTM_TO_KERAS])
    else:
        gates = 3

        def keras(a: np.ndarray) -> np.ndarray:
            return a
    arrays = {"kernel": keras(w).T, "recurrent_kernel": keras(r).T}
    if b is not None:
        w_bias, r_bias = keras(b[0][:gates * units]), keras(b[0][gates * units:])
        reset_after = node.op_type == "GRU" and attributes(node).get("linear_before_reset", 0)
        arrays["bias"] = np.stack([w_bias, r_bias]) if reset_after else w_bias + r_bias
    return arrays


def _step(walk: Walk, node: Any, labels: list[str], last: bool, steps: int, units: int
          ) -> tuple[list[str], bool] | None:
    """The labels of `node`'s output from its input's, or None where it is no reshuffle of
    the recurrent output the reader knows."""
    g, attrs = walk.g, attributes(node)
    rank = len(labels)
    if node.op_type == "Transpose":
        return [labels[p] for p in attrs.get("perm", range(rank)[::-1])], last
    if node.op_type == "Squeeze":
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = g.consts.get(node.input[1])
        drop = {int(a) % rank for a in np.asarray(axes).reshape(-1)} if axes is not None \
            else {i for i, label in enumerate(labels) if label == "D" or label == "T" and last}
        if any(labels[i] != "D" and not (labels[i] == "T" and last) for i in drop):
            return None
        return [label for i, label in enumerate(labels) if i not in drop], last
    if node.op_type == "Reshape":
        kept = [label for label in labels if label != "D" and not (label == "T" and last)]
        sizes = {"N": g.batch, "T": 1 if last else steps, "D": 1, "H": units}
        target = list(g.shapes.get(node.output[0]) or [])
        for candidate in (kept, labels):
            if target == [sizes[label] for label in candidate]:
                return list(candidate), last
        return None
    if node.op_type == "Gather" and labels[attrs.get("axis", 0) % rank] == "D":
        index = g.consts.get(node.input[1])  # h_n[-1]: the one direction
        if index is None or index.ndim or int(index) not in (0, -1):
            return None
        return [label for label in labels if label != "D"], last
    if node.op_type in ("Gather", "Slice") and "T" in labels and not last:
        time_axis = labels.index("T")
        if node.op_type == "Gather":
            index = g.consts.get(node.input[1])
            if attrs.get("axis", 0) % rank != time_axis or index is None or index.size != 1 \
                    or int(index.reshape(-1)[0]) % steps != steps - 1:
                return None
            return (labels if index.ndim else [x for x in labels if x != "T"]), True
        starts, ends, axes, stride = (g.consts.get(node.input[i])
                                      if len(node.input) > i and node.input[i] else None
                                      for i in (1, 2, 3, 4))
        if starts is None or ends is None or starts.size != 1 \
                or int(axes.reshape(-1)[0] if axes is not None else 0) % rank != time_axis \
                or int(starts.reshape(-1)[0]) % steps != steps - 1 \
                or int(ends.reshape(-1)[0]) < steps \
                or (stride is not None and int(stride.reshape(-1)[0]) != 1):
            return None
        return labels, True
    return None


def _follow(walk: Walk, node: Any, output: int, time_major: bool, steps: int, units: int
            ) -> tuple[list[str], str, list[Any]] | None:
    """From the LSTM's or GRU's output `output` (0: Y, 1: Y_h) to the value that is the spec
    layer's output: its axes' labels, its name, and the nodes on the way (the LSTM's too)."""
    current = node.output[output]
    if output == 0:
        labels = ["T", "D", "N", "H"] if time_major else ["N", "T", "D", "H"]
    else:
        labels = ["D", "N", "H"] if time_major else ["N", "D", "H"]
    last, chain = output == 1, [node]
    while True:
        readers = _readers(walk, current)
        found = _step(walk, readers[0], labels, last, steps, units) \
            if len(readers) == 1 else None
        if found is None and (labels == ["N", "H"] or not last
                              and labels in (["N", "T", "H"], ["T", "N", "H"])):
            return labels, current, chain  # what reads it is the next layer
        if found is None:
            where = repr(readers[0].name) if len(readers) == 1 else f"{len(readers)} readers"
            walk.refuse(node, f"its output reaches {where} along axes {labels}; the reader "
                              "follows it to the last step (batch, units) or every step "
                              "(batch, steps, units)")
            return None
        labels, last = found
        chain.append(readers[0])
        current = readers[0].output[0]


def recurrent(walk: Walk, node: Any) -> None:
    attrs, x = attributes(node), walk.values[node.input[0]]
    kind, units = node.op_type.lower(), int(attrs.get("hidden_size", 0))
    time_major = attrs.get("layout", 0) == 0
    inputs = list(node.input) + [""] * 8
    states = inputs[5:7] if node.op_type == "LSTM" else inputs[5:6]
    if x.layout != ("tm" if time_major else "seq") or attrs.get("direction", "forward") \
            != "forward" or attrs.get("activations", DEFAULT_ACTIVATIONS[node.op_type]) \
            != DEFAULT_ACTIVATIONS[node.op_type] or "clip" in attrs \
            or attrs.get("input_forget", 0) or inputs[4] or inputs[7] \
            or not all(_is_zeros(walk, name) for name in states):
        walk.refuse(node, "the spec's recurrent layers read a (batch, steps, features) "
                          "sequence forwards, from zero states, with sigmoid gates and tanh, "
                          "no clip, peepholes or sequence lengths")
        return
    arrays = _weights(walk, node, units)
    used = [i for i, name in enumerate(node.output) if name and _readers(walk, name)]
    if arrays is None or used not in ([0], [1]):
        walk.refuse(node, "the spec reads constant weights and one output, the sequence Y or "
                          "the last state Y_h")
        return
    steps = x.dims[0]
    followed = _follow(walk, node, used[0], time_major, steps, units)
    if followed is None:
        return
    labels, current, chain = followed
    walk.done |= {id(n) for n in chain}
    sequences = len(labels) == 3
    layer: dict[str, Any] = {"type": kind, "units": units, "use_bias": "bias" in arrays,
                             "return_sequences": sequences}
    if kind == "gru":
        layer["reset_after"] = bool(attrs.get("linear_before_reset", 0))
    out = Tensor(0, "flat", (units,)) if not sequences \
        else Tensor(0, "seq" if labels[0] == "N" else "tm", (steps, units))
    walk.add_layer(layer, [x], arrays, current, out)


HANDLERS_RECURRENT: dict[str, Handler] = {"LSTM": recurrent, "GRU": recurrent}
