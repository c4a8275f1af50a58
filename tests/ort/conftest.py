"""A tiny ONNX model with the harness's interface (`input` -> `probabilities`, dynamic batch),
written with onnx.helper: no framework export needed, so these tests stay fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FEATURES = 16
CLASSES = 10


def write_softmax_model(path: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """softmax(input @ w + b); returns (w, b) for a numpy reference."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, (FEATURES, CLASSES)).astype(np.float32)
    b = rng.normal(0, 0.1, CLASSES).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["logits_nobias"]),
         helper.make_node("Add", ["logits_nobias", "b"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)],
        "tiny_softmax",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", CLASSES])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by any onnxruntime this project supports
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return w, b


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    pytest.importorskip("onnxruntime")
    path = tmp_path_factory.mktemp("ort") / "tiny.onnx"
    w, b = write_softmax_model(path)
    return path, w, b


@pytest.fixture()
def inputs() -> np.ndarray:
    return np.random.default_rng(1).random((64, FEATURES), dtype=np.float32)

