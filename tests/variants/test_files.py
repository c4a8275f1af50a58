"""Variant files: int8 dynamic and static (QDQ) quantisation and float16 conversion produce
files that pass the ONNX checks and run; static calibration reads training images only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from harness import data as data_module  # noqa: E402
from harness.backends.onnx_io import INPUT_NAME, check_file  # noqa: E402
from harness.data import datasets  # noqa: E402
from harness.latency.variants.files import (  # noqa: E402
    CALIBRATION_IMAGES,
    build_variant_file,
    calibration_images,
    variant_path,
)
from harness.spec import load_spec  # noqa: E402


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: x})[0]


def _test_images(spec_file: Path, n: int = 64) -> np.ndarray:
    return data_module.load_arrays(load_spec(spec_file).input, limit=1, limit_test=n).x_test


@pytest.mark.parametrize("spec", ["tiny_mlp", "tiny_cnn"])
@pytest.mark.parametrize("variant, ops", [
    ("int8-dynamic", {"DynamicQuantizeLinear", "MatMulInteger"}),
    ("int8-static", {"QuantizeLinear", "DequantizeLinear"}),
])
def test_int8_variants_are_checked_smaller_files_close_to_float32(
        spec: str, variant: str, ops: set[str], exports: dict[str, Path],
        spec_files: dict[str, Path]) -> None:
    source = exports[spec]
    record = build_variant_file(variant, source, load_spec(spec_files[spec]).input)
    path = variant_path(source, variant)
    assert record["file"] == path.relative_to(source.parent).as_posix()
    assert ops <= set(record["onnx"]["op_types"])
    assert record["onnx"]["bytes"] < source.stat().st_size  # int8 weights
    assert record["onnx"] == {**check_file(path, tuple(load_spec(spec_files[spec]).input.shape)),
                              "sha256": record["onnx"]["sha256"]}
    x = _test_images(spec_files[spec])
    quantised, reference = _run(path, x), _run(source, x)
    assert quantised.shape == reference.shape
    assert np.abs(quantised - reference).max() < 0.1  # int8 rounding, not a broken graph


class _Poisoned:
    """Stands for the test split: any use of it fails the test."""

    def _fail(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the test set was read")

    __getitem__ = __len__ = __array__ = __iter__ = _fail
    shape = property(_fail)


def _poisoned_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    real = data_module.load_raw("mnist")
    raw = data_module.RawDataset(real.name, real.x_train, real.y_train, _Poisoned(), _Poisoned())
    for module in (data_module, datasets):  # the package's name and the loaders' own
        monkeypatch.setattr(module, "load_raw", lambda *args, **kwargs: raw)


def test_the_poison_trips_when_the_test_set_is_read(monkeypatch: pytest.MonkeyPatch,
                                                    spec_files: dict[str, Path]) -> None:
    """The control: loading arrays the usual way does read the test split."""
    _poisoned_raw(monkeypatch)
    with pytest.raises(AssertionError, match="the test set was read"):
        data_module.load_arrays(load_spec(spec_files["tiny_mlp"]).input, limit=10)


def test_static_calibration_never_reads_the_test_set(monkeypatch: pytest.MonkeyPatch,
                                                     exports: dict[str, Path],
                                                     spec_files: dict[str, Path]) -> None:
    _poisoned_raw(monkeypatch)
    record = build_variant_file("int8-static", exports["tiny_cnn"],
                                load_spec(spec_files["tiny_cnn"]).input)
    assert record["calibration"]["split"] == "training"
    assert record["calibration"]["images"] == CALIBRATION_IMAGES


def test_calibration_images_are_the_first_training_images(spec_files: dict[str, Path]) -> None:
    spec_input = load_spec(spec_files["tiny_cnn"]).input
    images = calibration_images(spec_input, count=40)
    expected = data_module.load_arrays(spec_input, limit=40, limit_test=1).x_train
    np.testing.assert_array_equal(images, expected)
    assert images.shape == (40, 28, 28, 1) and images.dtype == np.float32


def test_float16_conversion_is_a_valid_model_with_float32_interface(
        exports: dict[str, Path], spec_files: dict[str, Path]) -> None:
    """Built and checked without a GPU; ONNX Runtime's CPU provider can run it, which shows
    the numbers survive (it is timed on CUDA only)."""
    import onnx

    source = exports["tiny_cnn"]
    record = build_variant_file("fp16", source, load_spec(spec_files["tiny_cnn"]).input)
    path = variant_path(source, "fp16")
    model = onnx.load(str(path))
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    weights = {init.data_type for init in model.graph.initializer} & floats
    assert weights == {onnx.TensorProto.FLOAT16}  # (int64 shape constants stay)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert record["onnx"]["checker"] == "passed (full_check)"
    x = _test_images(spec_files["tiny_cnn"])
    assert np.abs(_run(path, x) - _run(source, x)).max() < 1e-2


def test_a_file_that_fails_the_checks_raises(monkeypatch: pytest.MonkeyPatch,
                                             exports: dict[str, Path],
                                             spec_files: dict[str, Path]) -> None:
    from harness.backends.onnx_io import OnnxCheckError
    from harness.latency.variants import files

    def truncated(source: Path, out: Path, calibration: object) -> dict[str, str]:
        out.write_bytes(source.read_bytes()[:100])
        return {}

    monkeypatch.setitem(files.BUILDERS, "int8-dynamic", truncated)
    with pytest.raises(OnnxCheckError):
        build_variant_file("int8-dynamic", exports["tiny_mlp"],
                           load_spec(spec_files["tiny_mlp"]).input)
