"""Keras 3 on JAX. The Keras backend is chosen here, and only here, before keras loads."""

from __future__ import annotations

from harness.backends.keras_common import select_keras_backend

select_keras_backend("jax", "keras-jax")

from harness.backends.keras_jax.backend import KerasJaxBackend  # noqa: E402

__all__ = ["KerasJaxBackend"]
