"""What Keras 3 does the same on every backend it runs on (TensorFlow, JAX, PyTorch).

Keras fixes its backend when it is first imported (`KERAS_BACKEND`), so one process holds one
Keras backend. Each harness backend on Keras selects its own here, before anything imports
keras, and refuses to run on a keras that an earlier import loaded on another backend.

This package imports no framework; `builder` and `backend` import keras, so only a harness
backend package (`keras_tf`, `keras_jax`, `keras_torch`) imports them, after selecting.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from harness.backends.base import BackendUnavailable

# Keras backend -> the module it needs
FRAMEWORK_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def select_keras_backend(keras_backend: str, harness_backend: str) -> None:
    """Make keras load on `keras_backend` ('tensorflow', 'jax', 'torch') for the harness
    backend `harness_backend`; BackendUnavailable, naming both backends, when keras is already
    loaded on another one in this process (it cannot switch, and a silent run on the wrong
    framework would be worse than none).

    ModuleNotFoundError (which `get_backend` turns into the pip command) when keras or the
    framework is missing, checked before anything is imported: a keras import that fails
    half-way on a missing framework would leave this process unable to load keras at all."""
    for module in ("keras", FRAMEWORK_MODULES[keras_backend]):
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != keras_backend:
        raise BackendUnavailable(
            f"keras was already imported with the {loaded.backend.backend()!r} backend in this "
            f"process; the {harness_backend!r} harness backend needs "
            f"KERAS_BACKEND={keras_backend}. Run it in a fresh process (harness run gives each "
            "job one), or set KERAS_BACKEND before anything imports keras."
        )
    os.environ["KERAS_BACKEND"] = keras_backend
