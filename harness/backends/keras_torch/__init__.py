"""Keras 3 on PyTorch. The Keras backend is chosen here, and only here, before keras loads."""

from __future__ import annotations

from harness.backends.keras_common import select_keras_backend

select_keras_backend("torch", "keras-torch")

from harness.backends.keras_torch.backend import KerasTorchBackend  # noqa: E402

__all__ = ["KerasTorchBackend"]
