"""Keras 3 on TensorFlow. The Keras backend is chosen here, and only here, before keras loads."""

from __future__ import annotations

import os

from harness.backends.keras_common import select_keras_backend
from harness.backends.keras_tf.info import INFO

select_keras_backend(INFO.keras_backend, INFO.name)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TF's C++ INFO/WARNING chatter

from harness.backends.keras_tf.backend import KerasBackend, KerasData  # noqa: E402

__all__ = ["INFO", "KerasBackend", "KerasData"]
