"""Every backend's epoch comes back timed in windows (harness.measure.step_windows): real short
epochs of the zoo's mlp2 on 400 MNIST images, batch 32 (12 full batches and one of 16).

Functions named `worker_*` run where the backend can (`backend_call`, tests/conftest.py):
module level, and this module imports no framework at its top.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

from harness.backends import Backend, EpochResult, get_backend
from harness.data import epoch_order, load_arrays
from harness.measure.step_windows import steady_step_time
from harness.spec import load_spec

SAMPLES, BATCH = 400, 32
STEPS = -(-SAMPLES // BATCH)  # 13: the last batch partial, a batch shape of its own


@cache
def _backend(name: str) -> Backend:
    return get_backend(name)


def worker_epochs(name: str, epochs: int = 2) -> list[EpochResult]:
    """`epochs` epochs of mlp2 from its initial weights, in the order training uses."""
    backend, spec = _backend(name), load_spec("mlp2")
    backend.seed(0)
    model = backend.build(spec)
    arrays = load_arrays(spec.input, limit=SAMPLES, limit_test=32)
    data = backend.to_native(arrays.x_train, arrays.y_train)
    return [backend.train_epoch(model, data, epoch_order(SAMPLES, epoch, 0), BATCH)
            for epoch in range(epochs)]


def _check_windows(result: EpochResult) -> None:
    assert len(result.window_seconds) == len(result.window_steps) == len(
        result.window_first_call)
    assert sum(result.window_steps) == STEPS
    assert all(steps >= 1 for steps in result.window_steps)
    assert all(seconds > 0 for seconds in result.window_seconds)
    # one clock read at every boundary: the windows add up to the epoch (float rounding aside)
    assert sum(result.window_seconds) <= result.seconds * (1 + 1e-9)
    assert sum(result.window_seconds) == pytest.approx(result.seconds, rel=1e-6)


@pytest.mark.parametrize("name", ["torch", "keras", "keras-jax", "keras-torch"])
def test_epochs_come_back_in_windows(name: str, backend_call: Any) -> None:
    first, second = backend_call(name, worker_epochs, name)
    for result in (first, second):
        _check_windows(result)
    # First epoch: the first call of each batch shape (full, then the partial last batch)
    # alone and flagged, the 11 steps between them in the 10 steady windows.
    assert first.window_first_call == (True, *[False] * 10, True)
    assert first.window_steps == (1, 2, *[1] * 9, 1)
    # Second epoch: no shape is new, 13 steps in 10 windows of about equal count.
    assert not any(second.window_first_call)
    assert second.window_steps == (2, 2, 2, *[1] * 7)
    steady = steady_step_time([first, second])
    assert steady is not None and steady.windows == 9 + 10 and steady.excluded == 3
    assert steady.low is not None and steady.low <= steady.median <= steady.high


def test_a_short_epoch_has_one_window_per_step() -> None:
    """Fewer steps than windows: one window per step."""
    backend = _backend("torch")
    spec = load_spec("mlp2")
    model = backend.build(spec)
    arrays = load_arrays(spec.input, limit=96, limit_test=32)
    data = backend.to_native(arrays.x_train, arrays.y_train)
    backend.train_epoch(model, data, np.arange(96), 32)  # compiles (warms) the shape
    result = backend.train_epoch(model, data, np.arange(96), 32)
    assert result.window_steps == (1, 1, 1) and not any(result.window_first_call)
    assert sum(result.window_seconds) == pytest.approx(result.seconds, rel=1e-6)
