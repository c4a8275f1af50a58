"""Replayable exports: `test_data_set_0/` beside every exported file, in the ONNX backend test
data layout, that ONNX Runtime reproduces outside the harness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from harness.export.driver import weights_source  # noqa: E402
from harness.latency import bench  # noqa: E402
from harness.latency.variants import VariantBench, VariantSettings, read_replay  # noqa: E402
from harness.latency.variants.replay import REPLAY_IMAGES, replay_dir, write_replay  # noqa: E402

FAST: dict[str, Any] = {"warmup": 0, "min_runs": 1, "min_seconds": 0.0}


@pytest.fixture(scope="module")
def benched(spec_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, dict[str, Any]]:
    """tiny_cnn through bench_backend with the int8-static variant, CPU only."""
    out = tmp_path_factory.mktemp("replay")
    source = weights_source(spec_files["tiny_cnn"], None)
    variants = VariantBench(VariantSettings(ort_variants=("int8-static",), limit_test=100))
    onnx_path = out / "tiny_cnn.torch.onnx"
    bench.bench_backend(source, "torch", providers=["cpu"], batch_sizes=[1], onnx_path=onnx_path,
                        x=bench.input_batch(source, 2), threads=1, variants=variants, **FAST)
    return onnx_path, variants.result()


def _load_with_numpy_helper(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """What any ONNX consumer does: TensorProto files through onnx.numpy_helper."""
    import onnx
    from onnx import numpy_helper

    tensors = []
    for name in ("input_0.pb", "output_0.pb"):
        proto = onnx.TensorProto()
        proto.ParseFromString((folder / name).read_bytes())
        tensors.append(numpy_helper.to_array(proto))
    return tensors[0], tensors[1]


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_onnx_runtime_reproduces_the_framework_outputs_stored_beside_the_export(
        benched: tuple[Path, dict[str, Any]]) -> None:
    onnx_path, _ = benched
    folder = onnx_path.parent / f"{onnx_path.name}.test_data" / "test_data_set_0"
    inputs, expected = _load_with_numpy_helper(folder)
    assert inputs.shape == (2, 28, 28, 1) and expected.shape == (2, 10)  # x holds 2 images
    np.testing.assert_allclose(_ort(onnx_path, inputs), expected, rtol=0, atol=1e-5)


def test_a_variant_folder_has_the_onnx_test_runner_layout(
        benched: tuple[Path, dict[str, Any]]) -> None:
    onnx_path, result = benched
    (entry,) = [e for e in result["variants"] if e["variant"] == "int8-static"]
    model = onnx_path.parent / entry["file"]
    assert model.name == "model.onnx"
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.onnx", "test_data_set_0"]
    assert onnx_path.parent / entry["replay"] == model.parent / "test_data_set_0"
    inputs, expected = _load_with_numpy_helper(model.parent / "test_data_set_0")
    np.testing.assert_allclose(_ort(model, inputs), expected, rtol=0, atol=1e-5)


def test_write_and_read_round_trip_with_names(tmp_path: Path) -> None:
    import onnx

    x = np.random.default_rng(0).random((REPLAY_IMAGES, 784), dtype=np.float32)
    y = np.random.default_rng(1).random((REPLAY_IMAGES, 10), dtype=np.float32)
    folder = write_replay(tmp_path / "model.onnx", x, y)
    assert folder == tmp_path / "test_data_set_0" == replay_dir(tmp_path / "model.onnx")
    inputs, outputs = read_replay(folder)
    np.testing.assert_array_equal(inputs, x)
    np.testing.assert_array_equal(outputs, y)
    proto = onnx.TensorProto()
    proto.ParseFromString((folder / "output_0.pb").read_bytes())
    assert proto.name == "probabilities"


def test_a_stored_output_that_differs_is_caught(tmp_path: Path,
                                                benched: tuple[Path, dict[str, Any]]) -> None:
    """The check can fail: outputs of other weights are not reproduced."""
    onnx_path, _ = benched
    inputs, expected = _load_with_numpy_helper(replay_dir(onnx_path))
    folder = write_replay(tmp_path / "model.onnx", inputs, expected[::-1])
    _, wrong = _load_with_numpy_helper(folder)
    assert np.abs(_ort(onnx_path, inputs) - wrong).max() > 1e-5
