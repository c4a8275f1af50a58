"""The ONNX reader on graphs written with onnx.helper: operators and attributes torch's
exporter does not write (auto_pad, GlobalAveragePool, Gelu, MatMul + Add, average pooling's
padding rule), each checked against ONNX Runtime on the file through the PyTorch backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_checks import TOLERANCE, _difference  # noqa: E402  (same folder)

from harness.importing import onnx_model  # noqa: E402
from harness.importing.imported import UnsupportedModel  # noqa: E402


def _save(nodes: list[Any], arrays: dict[str, np.ndarray], out_dims: list[Any], path: Path,
          opset: int = 20) -> Path:
    rng = np.random.default_rng(0)
    initializers = [numpy_helper.from_array(
        rng.normal(0, 0.5, shape).astype(np.float32) if isinstance(shape, tuple) else shape,
        name) for name, shape in arrays.items()]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", *out_dims])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=10)  # one ONNX Runtime reads
    onnx.save(model, str(path))
    return path


def test_auto_pad_gelu_global_pool_matmul(torch_backend: Any, tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], auto_pad="SAME_UPPER",
                              strides=[2, 2]),
             helper.make_node("Gelu", ["c"], ["g"]),
             helper.make_node("GlobalAveragePool", ["g"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "k"], ["m"]),
             helper.make_node("Add", ["m", "bias"], ["y"])]
    path = _save(nodes, {"w": (4, 1, 3, 3), "b": (4,), "k": (4, 10), "bias": (10,)}, [10],
                 tmp_path / "model.onnx")
    imported = onnx_model.read(path)
    assert [layer["type"] for layer in imported.layers] == ["conv2d", "global_avgpool2d",
                                                             "dense"]
    assert imported.layers[0]["padding"] == "same" and imported.layers[0]["activation"] == "gelu"
    assert imported.layers[2]["activation"] == "softmax"  # appended to the logits
    assert _difference(torch_backend, path, imported) <= TOLERANCE


def _pooled(path: Path, pads: list[int], count_include_pad: int, op: str = "AveragePool"
            ) -> Path:
    attributes = {"count_include_pad": count_include_pad} if op == "AveragePool" else {}
    nodes = [helper.make_node(op, ["x"], ["p"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=pads, **attributes),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "k"], ["z"], transB=1),
             helper.make_node("Softmax", ["z"], ["y"])]
    return _save(nodes, {"k": (10, 14 * 14)}, [10], path)


def test_same_pooling_leaves_the_padding_out(torch_backend: Any, tmp_path: Path) -> None:
    """TensorFlow's 'same' pads 0 above and 1 below here; its average leaves them out."""
    for op in ("AveragePool", "MaxPool"):
        path = _pooled(tmp_path / f"{op}.onnx", [0, 0, 1, 1], 0, op)
        imported = onnx_model.read(path)
        assert imported.layers[0]["padding"] == "same"
        assert _difference(torch_backend, path, imported) <= TOLERANCE


@pytest.mark.parametrize("pads, count_include_pad, message", [
    ([0, 0, 1, 1], 1, "count_include_pad averages the padded zeros"),
    ([1, 1, 0, 0], 0, r"pads \[1, 1, 0, 0\] .* 'same' here \[0, 0, 1, 1\]"),
])
def test_other_padding_is_refused(tmp_path: Path, pads: list[int], count_include_pad: int,
                                  message: str) -> None:
    path = _pooled(tmp_path / "model.onnx", pads, count_include_pad)
    with pytest.raises(UnsupportedModel, match=message):
        onnx_model.read(path)


def _dense_stack(path: Path, activation: Any) -> Path:
    nodes = [helper.make_node("Flatten", ["x"], ["f"]),
             helper.make_node("Gemm", ["f", "k1", "b1"], ["d1"], transB=1),
             helper.make_node("BatchNormalization", ["d1", "g", "beta", "mean", "var"], ["n"],
                              epsilon=1e-3),
             helper.make_node("Softplus", ["n"], ["s"]),
             helper.make_node("Gemm", ["s", "k2"], ["d2"]),
             activation,
             helper.make_node("Gemm", ["a", "k3"], ["y"])]
    arrays = {"k1": (16, 784), "b1": (16,), "g": (16,), "beta": (16,), "mean": (16,),
              "var": np.linspace(0.5, 2.0, 16).astype(np.float32), "k2": (16, 12),
              "k3": (12, 10)}
    return _save(nodes, arrays, [10], path)


def test_batchnorm_without_momentum_and_activations(torch_backend: Any, tmp_path: Path) -> None:
    path = _dense_stack(tmp_path / "model.onnx", helper.make_node("Selu", ["d2"], ["a"]))
    imported = onnx_model.read(path)
    assert [(layer["type"], layer.get("activation")) for layer in imported.layers] == [
        ("flatten", None), ("dense", "linear"), ("batchnorm", None),
        ("activation", "softplus"), ("dense", "selu"), ("dense", "softmax")]
    assert imported.layers[2] == {"type": "batchnorm", "momentum": 0.9, "epsilon": 0.001}
    assert any("momentum 0.9" in note for note in imported.notes)
    assert _difference(torch_backend, path, imported) <= TOLERANCE


def test_an_activation_the_spec_fixes_otherwise_is_refused(tmp_path: Path) -> None:
    path = _dense_stack(tmp_path / "model.onnx",
                        helper.make_node("Elu", ["d2"], ["a"], alpha=0.5))
    with pytest.raises(UnsupportedModel, match=r"\(Elu\): alpha 0.5: the spec's elu has alpha 1"):
        onnx_model.read(path)


@pytest.mark.parametrize("shape, layers", [
    ((1, 1, 1), ["batchnorm", "flatten", "dense"]),  # one number: every channel
    ((1, 1, 28, 1), None),  # per row, not per channel: no layer of the spec
])
def test_a_mul_by_constants_is_a_batchnorm_only_per_channel(
        torch_backend: Any, tmp_path: Path, shape: tuple[int, ...], layers: Any) -> None:
    nodes = [helper.make_node("Mul", ["x", "s"], ["m"]),
             helper.make_node("Add", ["m", "t"], ["a"]),
             helper.make_node("Flatten", ["a"], ["f"]),
             helper.make_node("Gemm", ["f", "k"], ["y"])]
    path = _save(nodes, {"s": shape, "t": (1,), "k": (784, 10)}, [10], tmp_path / "m.onnx")
    if layers is None:
        with pytest.raises(UnsupportedModel, match=r"\(Mul\): a Mul outside the patterns"):
            onnx_model.read(path)
        return
    imported = onnx_model.read(path)
    assert [layer["type"] for layer in imported.layers] == layers
    assert _difference(torch_backend, path, imported) <= TOLERANCE
