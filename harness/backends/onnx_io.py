"""The ONNX interface every export shares, and the checks every exported file passes.

One float32 input `input` (batch, *spec input shape) in the spec's layout (NHWC for images) and
one output `probabilities` (batch, 10), with a symbolic batch dimension `batch`: one feed drives
the file of either framework. `onnx` is imported inside the functions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
BATCH_DIM = "batch"
DEFAULT_OPSET = 18  # the newest opset tf2onnx 1.17 supports; torch.onnx's default as well


class OnnxCheckError(RuntimeError):
    """An exported file that fails the ONNX checker, shape inference or the interface."""


def _rename_value(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.name == old:
            value.name = new


def standardize_interface(model: Any) -> Any:
    """Name the single input/output `input`/`probabilities` and the batch dimension `batch`.

    Converters pick their own names (tf2onnx: `Identity:0`, `unk__52`); a fixed interface lets
    benchmarks and users feed either framework's file the same way.
    """
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise OnnxCheckError(f"expected one input and one output, got {len(inputs)} inputs "
                             f"and {len(graph.output)} outputs")
    if inputs[0].name != INPUT_NAME:
        _rename_value(graph, inputs[0].name, INPUT_NAME)
    if graph.output[0].name != OUTPUT_NAME:
        _rename_value(graph, graph.output[0].name, OUTPUT_NAME)
    for value in (inputs[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    return model


def _interface_problems(model: Any, input_shape: tuple[int, ...], classes: int) -> list[str]:
    import onnx

    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    problems = []
    for kind, values, name, tail in (("input", inputs, INPUT_NAME, list(input_shape)),
                                     ("output", list(graph.output), OUTPUT_NAME, [classes])):
        if len(values) != 1 or values[0].name != name:
            problems.append(f"expected one {kind} named {name!r}, got "
                            f"{[value.name for value in values]}")
            continue
        tensor_type = values[0].type.tensor_type
        dims = tensor_type.shape.dim
        if tensor_type.elem_type != onnx.TensorProto.FLOAT:
            problems.append(f"{kind} {name!r} is not float32")
        if not dims or dims[0].dim_param != BATCH_DIM:
            problems.append(f"{kind} {name!r} has no symbolic batch dimension {BATCH_DIM!r}")
        if [dim.dim_value for dim in dims[1:]] != tail:
            problems.append(f"{kind} {name!r} has shape {[d.dim_value for d in dims]}, "
                            f"expected [{BATCH_DIM}, {', '.join(map(str, tail))}]")
    return problems


def check_file(path: Path, input_shape: tuple[int, ...], classes: int = 10) -> dict[str, Any]:
    """Run the ONNX checker (full) and strict shape inference, verify the interface (`classes`:
    the output's size, the spec's last layer's units), describe."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path))
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise OnnxCheckError(f"{path}: {exc}") from None
    problems = _interface_problems(model, input_shape, classes)
    if problems:
        raise OnnxCheckError(f"{path}: " + "; ".join(problems))
    data = Path(path).read_bytes()
    opsets = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
    return {
        "opset": opsets.get("ai.onnx"),
        "opset_imports": opsets,
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "nodes": len(model.graph.node),
        "op_types": sorted({node.op_type for node in model.graph.node}),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "checker": "passed (full_check)",
        "shape_inference": "passed (strict)",
    }
