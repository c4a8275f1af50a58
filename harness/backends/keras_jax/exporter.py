"""Keras 3 on JAX -> ONNX through Keras on TensorFlow and tf2onnx, in a worker process.

A Keras model file is backend-neutral: the model saved here loads unchanged in Keras on
TensorFlow, which exports it the way the `keras` backend does (tf2onnx's `from_function`; every
zoo layer covered). Keras holds one backend per process, so that runs in a worker process
(harness.backends.isolation), kept for this process's later exports. The file is then checked
against this process's JAX outputs like every export.

Why not a JAX-native route: jax2tf now emits only native serialization (one XlaCallModule op),
which tf2onnx cannot convert; jax2onnx, Keras' own JAX route, needs flax, equinox, optax and
orbax besides, and the CPU `onnxruntime` package, which would replace `onnxruntime-gpu`; and its
MaxPool of a Conv2D + MaxPooling2D model is refused by ONNX Runtime ("Unsupported pooling size").
"""

from __future__ import annotations

import importlib.util
import tempfile
from functools import cache
from pathlib import Path

import keras

from harness.backends.base import BackendUnavailable
from harness.backends.isolation import BackendProcess

CONVERTER = ("harness.backends.keras_tf.convert", "convert_file")


@cache
def _converter() -> BackendProcess:
    """The worker holding Keras on TensorFlow, started at the first export (ended at exit)."""
    return BackendProcess()


def export_onnx(model: keras.Model, path: Path, opset: int) -> None:
    missing = [name for name in ("tensorflow", "tf2onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise BackendUnavailable(
            f"Keras on JAX exports to ONNX through Keras on TensorFlow and tf2onnx; "
            f"{' and '.join(missing)} not installed: pip install -e '.[keras,onnx]'")
    with tempfile.TemporaryDirectory(prefix="harness-keras-jax-") as folder:
        saved = Path(folder) / "model.keras"
        model.save(saved)
        _converter().call(*CONVERTER, str(saved), str(Path(path).resolve()), opset)
