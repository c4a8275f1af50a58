"""Native PyTorch inference for latency timing: the eager loop a PyTorch user writes.

The input is moved to the device once; each call is one forward pass in inference mode (no
autograd bookkeeping) returning probabilities, synchronised on CUDA so the time is the work's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from harness.backends.pytorch.model import TorchModel


def native_predictor(model: TorchModel, x: np.ndarray,
                     device: torch.device) -> Callable[[], torch.Tensor]:
    """A zero-argument callable computing `model.net(x)` on `device`, blocking until done."""
    net = model.net
    net.eval()  # dropout off, BN on running statistics; train_epoch switches back itself
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    on_cuda = device.type == "cuda"

    def predict() -> torch.Tensor:
        with torch.inference_mode():
            probs = net(inputs)
        if on_cuda:
            torch.cuda.synchronize(device)  # kernels run async; the result must be ready
        return probs

    return predict
