"""The ONNX reader of `harness import`: an ONNX file (a PyTorch model through
`torch.onnx.export`, dynamo or TorchScript, or a file the harness exported from PyTorch or,
through tf2onnx, from Keras) read into spec layers and their weights.

`read(path)` walks the graph from its one input to its one output (harness.importing.onnx_walk)
and maps each operator pattern to a spec layer (onnx_ops: Gemm / MatMul(+Add) -> dense, Conv
-> conv2d / depthwise_conv2d (group == channels) / conv1d, MaxPool / AveragePool, global
pooling (GlobalAveragePool / GlobalMaxPool, ReduceMean / ReduceMax over H, W or the steps),
BatchNormalization; onnx_shaping: activations (Relu, Sigmoid, Tanh, Softmax, Elu, Selu,
Softplus, Gelu and torch's decomposed erf GELU, x * Sigmoid(x) as swish), Flatten / Reshape,
Add, Concat, transposes between NCHW and NHWC; onnx_recurrent: LSTM, GRU). An activation goes
into the `activation` field of the layer before it where that has one, still linear, and
nothing else reads its output; else it is an activation layer. The weights are converted to
the spec's channels-last layout (onnx_ops' and onnx_recurrent's docstrings say how). Anything
else: UnsupportedModel, one line per node (its name, its operator, what the spec reads).

The input: (batch, 784), (batch, 28, 28) rows, or a 28x28 image as PyTorch takes it, (batch,
1, 28, 28), or as the harness' own exports take it, (batch, 28, 28, 1). The spec's input is
channels-last ([28, 28, 1] for both image layouts).

The output rule. A spec ends in a softmax (it trains with categorical cross-entropy on
probabilities), so a model whose last operator is
  - Softmax keeps it (folded into the last layer's activation where it can be);
  - LogSoftmax becomes a softmax; `predict` returns exp of the file's output;
  - anything else (logits) gets a softmax appended; `predict` returns softmax of the output;
so `predict` gives what the imported spec's model outputs, probabilities, and the proof
compares like with like. Each such change is one of the ImportedModel's notes.

What an ONNX file does not hold, the reader decides and notes: dropout (an inference graph has
none; the spec gets no dropout layers), batchnorm momentum (ONNX's momentum attribute, else
0.9: PyTorch's default 0.1 in Keras' convention; PyTorch's exporter in eval mode usually folds
a batchnorm after a convolution into its kernel, so the spec gets none there), the training
settings (none: `train` is None). Initializers are not in a file either: the spec's layers
carry the defaults, and the weights are the file's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.importing.imported import ImportedModel, UnreadableModel
from harness.importing.onnx_graph import Graph, load
from harness.importing.onnx_ops import HANDLERS_CORE
from harness.importing.onnx_recurrent import HANDLERS_RECURRENT
from harness.importing.onnx_shaping import HANDLERS_SHAPING
from harness.importing.onnx_walk import INPUT_LAYOUTS, Walk

HANDLERS = {**HANDLERS_CORE, **HANDLERS_SHAPING, **HANDLERS_RECURRENT}


def output_kind(graph: Graph) -> str:
    """'probabilities' (Softmax last), 'log_probabilities' (LogSoftmax last) or 'logits'."""
    node = graph.producer.get(graph.output.name)
    while node is not None and node.op_type in ("Identity", "Dropout"):
        node = graph.producer.get(node.input[0])
    op = node.op_type if node is not None else ""
    return {"Softmax": "probabilities", "LogSoftmax": "log_probabilities"}.get(op, "logits")


def read(path: Path) -> ImportedModel:
    """The model of an ONNX file as spec layers and canonical weights. UnreadableModel for a
    file that is not ONNX (or truncated), UnsupportedModel with one line per node the spec
    cannot express."""
    path = Path(path)
    graph = Graph(load(path), path)
    walk = Walk(graph)
    walk.note("an ONNX inference graph has no dropout (exporters leave it out, Dropout nodes "
              "compute nothing): the spec has none; add the model's dropout layers to train "
              "it as it was trained")
    input_shape = walk.run(HANDLERS)
    layers = walk.finish(output_kind(graph))
    return ImportedModel(source=path, format="onnx", input_shape=input_shape, layers=layers,
                         weights=walk.weights, train=None, notes=walk.notes)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def predict(path: Path, x: np.ndarray) -> np.ndarray:
    """The file's model on `x` (shaped as the spec's input: channels-last images), run in
    ONNX Runtime on the CPU, as probabilities (the output rule in the module's docstring)."""
    from harness.ort.sessions import create_session, run_batched

    path = Path(path)
    graph = Graph(load(path), path)
    dims = graph.data_dims(graph.input.name)
    feed = np.ascontiguousarray(x, dtype=np.float32)
    if dims is not None and INPUT_LAYOUTS.get(dims) == "nchw":
        feed = np.ascontiguousarray(feed.reshape(len(feed), 28, 28, 1).transpose(0, 3, 1, 2))
    try:
        session = create_session(path, "cpu")
    except Exception as error:  # onnxruntime's own Fail, InvalidGraph, NotImplemented
        reason = (str(error).strip().splitlines() or [""])[0][:300]
        raise UnreadableModel(path, [f"ONNX Runtime cannot run it ({type(error).__name__}: "
                                     f"{reason})"]) from None
    if graph.batch:  # a file exported for one batch size: pad the last batch to it
        size = len(feed)
        feed = np.concatenate([feed, np.zeros((-size % graph.batch, *feed.shape[1:]),
                                              np.float32)])
        out = run_batched(session, feed, batch_size=graph.batch)[:size].astype(np.float64)
    else:
        out = run_batched(session, feed).astype(np.float64)
    kind = output_kind(graph)
    probabilities = out if kind == "probabilities" else np.exp(out) \
        if kind == "log_probabilities" else _softmax(out)
    return probabilities.astype(np.float32)
