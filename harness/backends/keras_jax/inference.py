"""Native Keras-on-JAX inference for latency timing, without `model.predict`'s per-call
overhead (data adapter, callbacks, batching loop, numpy conversion).

As Keras' own JAX predict step does: the model as a pure function of its variables' values
(`stateless_call`), jit-compiled with XLA when the model is (its default), called on an input
already on the device with the values as arguments, and waited for (JAX dispatches
asynchronously). The result's device is checked against the one asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import keras
import numpy as np

from harness.backends.base import BackendUnavailable
from harness.backends.keras_common.builder import compile_mode


def native_predictor(model: keras.Model, x: np.ndarray,
                     device: jax.Device) -> Callable[[], jax.Array]:
    """A zero-argument callable computing `model(x, training=False)` on `device`."""
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def forward(values: list[Any], statistics: list[Any], inputs: jax.Array) -> jax.Array:
        probs, _ = model.stateless_call(values, statistics, inputs, training=False)
        return probs

    if compile_mode(model) == "xla":
        forward = jax.jit(forward)
    inputs = jax.device_put(np.ascontiguousarray(x, dtype=np.float32), device)

    def predict() -> jax.Array:
        return forward(trainable, non_trainable, inputs).block_until_ready()

    # trace and compile now, so a failure shows here, not inside a timing
    placed = predict().devices()
    if placed != {device}:
        raise BackendUnavailable(f"the Keras-on-JAX predictor was asked for {device} but its "
                                 f"result is on {sorted(map(str, placed))}")
    return predict
