"""Export a saved Keras model file to ONNX with Keras on TensorFlow.

Keras model files are backend-neutral, so a model of another Keras backend (Keras on JAX,
harness.backends.keras_jax.exporter) is exported through the `keras` backend's own route, in a
worker process that holds Keras on TensorFlow (harness.backends.isolation).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import keras

from harness.backends.keras_tf.backend import KerasBackend


@cache
def _backend() -> KerasBackend:
    """Made once, before any model loads: it sets TensorFlow's threads and hides the GPUs,
    which only works before TensorFlow's runtime starts."""
    return KerasBackend(device="cpu")


def convert_file(model_file: str, out: str, opset: int) -> None:
    """Load `model_file` (inference only) and write it to `out` as the `keras` backend does."""
    backend = _backend()
    model = keras.models.load_model(model_file, compile=False)
    backend.export_onnx(model, Path(out), opset)
