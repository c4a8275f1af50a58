"""Keras 3 on PyTorch. The Keras backend is chosen here, and only here, before keras loads."""

from __future__ import annotations

from harness.backends.keras_common import select_keras_backend
from harness.backends.keras_torch.info import INFO

select_keras_backend(INFO.keras_backend, INFO.name)

from harness.backends.keras_torch.backend import KerasTorchBackend  # noqa: E402

__all__ = ["INFO", "KerasTorchBackend"]
