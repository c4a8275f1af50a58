"""Native Keras (TensorFlow) inference for latency timing, without `model.predict`'s per-call
overhead (data adapter, callbacks, batching loop, numpy conversion): what a Keras user serving
single batches writes.

`model(x, training=False)` is wrapped in one `tf.function`, traced once, with XLA exactly when
the model was compiled for XLA (the mode `fit` and `predict` use, see `compile_mode`), and
called on a tensor already on the device.

Completion, kept symmetric with the PyTorch predictor (no copy on either side):
- CPU: TF executes eagerly and synchronously by default, so when the function returns its
  output tensor already holds the computed values, like torch's CPU tensor. `.numpy()` would
  only add a copy that the torch side does not pay. (If asynchronous execution was switched
  on, the predictor syncs as on the GPU.)
- GPU: kernels are queued asynchronously; `tf.test.experimental.sync_devices()` waits for them,
  the counterpart of `torch.cuda.synchronize()`. The result stays on the device.

TF soft-places ops whose device is missing (a GPU hidden from this process) on the CPU without
a word: the first result's device is checked, and a predictor whose result is not on the
requested device is refused (BackendUnavailable), never timed under the wrong label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from harness.backends.base import BackendUnavailable
from harness.backends.keras_common.builder import compile_mode


def native_predictor(model: keras.Model, x: np.ndarray, tf_device: str) -> Callable[[], Any]:
    """A zero-argument callable computing `model(x, training=False)` on `tf_device` ('/CPU:0'
    or '/GPU:0'), blocking until the result is ready; returns the output tf.Tensor."""
    xla = compile_mode(model) == "xla"

    @tf.function(jit_compile=xla)
    def forward(inputs: tf.Tensor) -> tf.Tensor:
        # Placement is fixed in the traced graph: no per-call device-scope cost.
        with tf.device(tf_device):
            return model(inputs, training=False)

    with tf.device(tf_device):
        # identity: a copy made on the device, once, whatever tf.constant placed it on
        inputs = tf.identity(tf.constant(np.ascontiguousarray(x, dtype=np.float32)))
    # Also when someone turned TF's CPU execution asynchronous (off by default).
    needs_sync = ("GPU" in tf_device.upper()
                  or not tf.config.experimental.get_synchronous_execution())

    def predict() -> tf.Tensor:
        probs = forward(inputs)
        if needs_sync:
            tf.test.experimental.sync_devices()
        return probs

    # trace (and XLA-compile) now, so a failure shows here, not inside a timing
    _require_result_on(predict(), tf_device)
    return predict


def _require_result_on(output: tf.Tensor, tf_device: str) -> None:
    """BackendUnavailable unless `output` lies on the kind of device (GPU or not) asked for."""
    wanted_gpu = "GPU" in tf.DeviceSpec.from_string(tf_device).device_type.upper()
    placed = str(output.device)
    if ("GPU" in placed.upper()) != wanted_gpu:
        raise BackendUnavailable(
            f"the Keras predictor was asked for {tf_device} but its result is on {placed}: "
            "TensorFlow placed the model elsewhere (soft placement; for a GPU, hidden or "
            "unusable in this process)")
