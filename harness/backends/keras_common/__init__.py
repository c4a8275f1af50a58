"""What Keras 3 does the same on every backend it runs on (TensorFlow, JAX, PyTorch).

Keras fixes its backend when it is first imported (`KERAS_BACKEND`), so one process holds one
Keras backend. Each harness backend on Keras selects its own here, before anything imports
keras, and refuses to run on a keras that an earlier import loaded on another backend.

This package imports no framework; `builder` and `backend` import keras, so only a harness
backend package (`keras_tf`, `keras_jax`, `keras_torch`) imports them, after selecting.
"""

from __future__ import annotations

import os
import sys

from harness.backends.base import KerasBackendConflict
from harness.spec import ModelSpec, infer
from harness.spec import layers as L


def select_keras_backend(keras_backend: str, harness_backend: str) -> None:
    """Make keras load on `keras_backend` ('tensorflow', 'jax', 'torch') for the harness
    backend `harness_backend`; BackendUnavailable, naming both backends, when keras is already
    loaded on another one in this process (KerasBackendConflict: it cannot switch, and a
    silent run on the wrong framework would be worse than none). `get_backend` checks that
    keras and the framework are installed before this runs."""
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != keras_backend:
        raise KerasBackendConflict(
            f"keras was already imported with the {loaded.backend.backend()!r} backend in this "
            f"process; the {harness_backend!r} harness backend needs "
            f"KERAS_BACKEND={keras_backend}. Run it in a fresh process (harness run gives each "
            "job one), or set KERAS_BACKEND before anything imports keras."
        )
    os.environ["KERAS_BACKEND"] = keras_backend


def differs_on_torch(spec: ModelSpec) -> list[str]:
    """The spec's layers Keras on PyTorch computes otherwise than Keras on TensorFlow and JAX:
    a 'same' average pool whose padding is asymmetric (an odd total, the extra row or column at
    the bottom or right) gets other values in its last row or column of windows (Keras 3.15's
    keras.src.backend.torch.nn.average_pool; symmetric padding and max pools agree)."""
    return [f"layers[{index}] (avgpool2d, padding 'same', padded top/bottom/left/right "
            f"{'/'.join(map(str, info.padding))})"
            for index, info in enumerate(infer(spec).layers)
            if isinstance(info.layer, L.AvgPool2D) and info.layer.padding == "same"
            and (info.padding[0] != info.padding[1] or info.padding[2] != info.padding[3])]
