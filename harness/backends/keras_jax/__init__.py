"""Keras 3 on JAX. The Keras backend is chosen here, and only here, before keras loads."""

from __future__ import annotations

from harness.backends.keras_common import select_keras_backend
from harness.backends.keras_jax.info import INFO

select_keras_backend(INFO.keras_backend, INFO.name)

from harness.backends.keras_jax.backend import KerasJaxBackend  # noqa: E402

__all__ = ["INFO", "KerasJaxBackend"]
