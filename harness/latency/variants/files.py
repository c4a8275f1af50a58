"""Variant files of a float32 export: int8 dynamic, int8 static (QDQ) and float16.

Each variant is its own `model.onnx` in `<export stem>.variants/<variant>/`, checked like every
export (ONNX checker, strict shape inference, the harness interface), with `test_data_set_0/`
beside it. The static variant's activation ranges come from a fixed subset of the TRAINING
images — the first CALIBRATION_IMAGES —, read without touching the test set (which the
accuracy of every variant is measured on).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness import data as data_module
from harness.backends.onnx_io import INPUT_NAME, check_file
from harness.records.folders import ONNX_FILE
from harness.spec.schema import InputSpec

CALIBRATION_IMAGES = 256
CALIBRATION_BATCH = 32


def variant_path(onnx_path: Path, variant: str) -> Path:
    onnx_path = Path(onnx_path)
    return onnx_path.parent / f"{onnx_path.stem}.variants" / variant / ONNX_FILE


def calibration_images(input_spec: InputSpec, count: int = CALIBRATION_IMAGES,
                       data_dir: Path | None = None) -> np.ndarray:
    """The first `count` training images in the spec's input layout. The test split is
    dropped before `prepare` sees the data, so no test image is read."""
    raw = data_module.load_input_raw(input_spec, data_dir)
    train_only = data_module.RawDataset(raw.name, raw.x_train, raw.y_train,
                                        raw.x_train[:0], raw.y_train[:0])
    return data_module.prepare(train_only, input_spec, limit=count).x_train


class _CalibrationReader:
    """onnxruntime.quantization's CalibrationDataReader protocol over fixed batches."""

    def __init__(self, images: np.ndarray) -> None:
        self._batches = iter([{INPUT_NAME: np.ascontiguousarray(images[i:i + CALIBRATION_BATCH])}
                              for i in range(0, len(images), CALIBRATION_BATCH)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _preprocessed(source: Path, folder: Path) -> Path:
    """ONNX Runtime's quantisation pre-processing (symbolic shape inference, graph clean-up),
    without which the quantiser's own shape inference rejects converter output."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = folder / "preprocessed.onnx"
    quant_pre_process(str(source), str(out))
    return out


def _int8_dynamic(source: Path, out: Path, calibration: Callable[[], np.ndarray]
                  ) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="harness-quant-") as folder:
        quantize_dynamic(str(_preprocessed(source, Path(folder))), str(out),
                         weight_type=QuantType.QInt8)
    return {"weights": "int8 per tensor", "activations": "uint8, quantised at run time"}


def _int8_static(source: Path, out: Path, calibration: Callable[[], np.ndarray]
                 ) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    images = calibration()
    with tempfile.TemporaryDirectory(prefix="harness-quant-") as folder:
        # S8S8 in QDQ format: ONNX Runtime's recommended default on x86 CPUs
        quantize_static(str(_preprocessed(source, Path(folder))), str(out),
                        _CalibrationReader(images), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    return {"weights": "int8 per tensor", "activations": "int8, static ranges",
            "calibration": {"split": "training", "images": int(len(images)),
                            "selection": f"the first {len(images)} training images",
                            "method": "MinMax"}}


def _float16(source: Path, out: Path, calibration: Callable[[], np.ndarray]) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    graph = OnnxModel(model)
    graph.topological_sort()  # the converter appends the input casts after their users
    onnx.save(graph.model, str(out))
    return {"weights": "float16", "activations": "float16; float32 input and output"}


# variant -> builder(float32 file, out file, calibration images) -> what it did
Builder = Callable[[Path, Path, Callable[[], np.ndarray]], dict[str, Any]]
BUILDERS: dict[str, Builder] = {"int8-dynamic": _int8_dynamic, "int8-static": _int8_static,
                                "fp16": _float16}


def build_variant_file(variant: str, source: Path, input_spec: InputSpec,
                       data_dir: Path | None = None, classes: int = 10) -> dict[str, Any]:
    """Write the variant of the float32 file `source`; return its record: file (relative to
    the export's folder), what the builder did, and the checks' description (opset, nodes,
    bytes, sha256). A file that fails its checks raises OnnxCheckError."""
    out = variant_path(source, variant)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = BUILDERS[variant](Path(source), out,
                             lambda: calibration_images(input_spec, data_dir=data_dir))
    info = check_file(out, tuple(input_spec.shape), classes)
    return {"file": out.relative_to(Path(source).parent).as_posix(), **done, "onnx": info}
