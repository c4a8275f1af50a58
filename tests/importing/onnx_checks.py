"""What the ONNX reader's tests share: the imported spec built in the PyTorch backend from the
imported weights, and its largest difference from ONNX Runtime on the original file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.importing import onnx_model
from harness.importing.imported import ImportedModel

TOLERANCE = 1e-5  # the parity checks' bound
TRAIN = {"optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
         "batch_size": 32, "epochs": 1}


def _spec(imported: ImportedModel) -> Any:
    from harness.spec.schema import ModelSpec

    return ModelSpec.model_validate({"name": "imported", "input": {"shape":
                                                                    list(imported.input_shape)},
                                     "layers": imported.layers, "train": TRAIN})


def _spec_outputs(torch_backend: Any, imported: ImportedModel, x: np.ndarray) -> np.ndarray:
    model = torch_backend.build(_spec(imported))
    torch_backend.set_weights(model, imported.weights)
    return torch_backend.predict(model, x)


def _samples(shape: tuple[int, ...], n: int = 16) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (n, *shape)).astype(np.float32)


def _difference(torch_backend: Any, path: Path, imported: ImportedModel) -> float:
    x = _samples(imported.input_shape)
    return float(np.abs(_spec_outputs(torch_backend, imported, x)
                        - onnx_model.predict(path, x)).max())
