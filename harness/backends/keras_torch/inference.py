"""Native Keras-on-PyTorch inference for latency timing: what a Keras user serving single
batches writes, without `model.predict`'s per-call overhead (data adapter, callbacks, batching
loop, numpy conversion).

Each call is `model(x, training=False)` under torch.inference_mode on an input already on the
device, through torch.compile when the model was compiled for it (jit_compile=True), and
synchronised on CUDA so the time is the work's.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import torch

from harness.backends.keras_common.builder import compile_mode


def native_predictor(model: keras.Model, x: np.ndarray,
                     device: torch.device) -> Callable[[], torch.Tensor]:
    """A zero-argument callable computing `model(x, training=False)` on `device`."""
    model.eval()

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        return model(inputs, training=False)

    if compile_mode(model) == "torch.compile":
        forward = torch.compile(forward)
    inputs = torch.tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
    on_cuda = device.type == "cuda"

    def predict() -> torch.Tensor:
        with torch.inference_mode():
            probs = forward(inputs)
        if on_cuda:
            torch.cuda.synchronize(device)
        return probs

    predict()  # trace (and compile) now, so a failure shows here, not inside a timing
    return predict
