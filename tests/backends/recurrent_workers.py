"""What tests/backends/test_recurrent_layers.py runs in a Keras backend's worker process
(`backend_call`): a module that imports no Keras, so the worker picks its Keras backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.spec import ModelSpec


def predict_and_export(name: str, spec: ModelSpec, weights: dict, x: np.ndarray,
                       path: Path) -> tuple[np.ndarray, str]:
    """In backend `name`'s process: its outputs, and what its ONNX export says."""
    from harness.backends import BackendUnavailable, get_backend
    from harness.backends.onnx_io import DEFAULT_OPSET

    backend = get_backend(name)
    model = backend.build(spec)
    backend.set_weights(model, weights)
    try:
        backend.export_onnx(model, path, DEFAULT_OPSET)
    except BackendUnavailable as exc:
        return backend.predict(model, x), str(exc)
    return backend.predict(model, x), "exported"
