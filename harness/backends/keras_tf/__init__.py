"""Keras 3 on TensorFlow. The Keras backend is chosen here, and only here, before keras loads."""

from __future__ import annotations

import os
import sys

from harness.backends.base import BackendUnavailable

# Keras reads KERAS_BACKEND once, at its first import; a keras already loaded with another
# backend cannot be switched, so fail loudly rather than train on the wrong framework.
_loaded = sys.modules.get("keras")
if _loaded is not None and _loaded.backend.backend() != "tensorflow":
    raise BackendUnavailable(
        f"keras was already imported with the {_loaded.backend.backend()!r} backend in this "
        "process; the 'keras' harness backend needs KERAS_BACKEND=tensorflow. Run it in a fresh "
        "process (or set KERAS_BACKEND=tensorflow before anything imports keras)."
    )
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TF's C++ INFO/WARNING chatter

from harness.backends.keras_tf.backend import KerasBackend, KerasData  # noqa: E402

__all__ = ["KerasBackend", "KerasData"]
