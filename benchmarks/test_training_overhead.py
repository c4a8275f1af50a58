"""The harness's steady training epoch against a bare loop of each framework, written the way
that framework's own benchmarks time it, side by side in one process per spec and framework:

- Keras: one `model.fit` over several epochs on numpy arrays with Keras' own shuffling, each
  epoch timed by a callback from `on_epoch_begin` to `on_epoch_end` (the TimerCallBack of the
  Keras benchmarks).
- PyTorch: a plain loop over the device tensors: a shuffled index, batch gather, forward, loss,
  backward, optimizer step (torch.optim where it has the spec's optimizer); the epoch is timed
  around the loop and synchronised on CUDA.

Both sides start from the spec's initial weights, with models of their own, and rounds
alternate which side runs first. Each spec x framework runs in a fresh process: two
frameworks' thread pools in one process slow each other unevenly (measured here: cnn3_k3's
PyTorch ratio 1.75 after a Keras case in the same process, 0.92 alone). Each side's steady
figure is harness.training's one definition, the median of the epochs after the first.
`extra_info` holds every epoch time and the ratios harness / bare: `ratio` for the epoch time
the harness records (its timed region), `wall_ratio` for the whole `train_epoch` call (the
batch gather before the clock included). Nothing is asserted about timings: on a shared
machine a ratio is a measurement, not a verdict (`extra_info["machine_load"]` says how busy
the machine was).

HARNESS_BENCH_SPECS (default mlp2,cnn3_k3), HARNESS_BENCH_LIMIT training images (default
4000), HARNESS_BENCH_EPOCHS per side and round (default 4, at least 2), HARNESS_BENCH_ROUNDS
(default 2), HARNESS_BENCH_DEVICE (cpu or cuda), HARNESS_BENCH_THREADS.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from itertools import count
from typing import Any

import numpy as np
import pytest
from conftest import bench_int, bench_specs

from harness.backends import BackendUnavailable, get_backend
from harness.data import epoch_order, load_arrays
from harness.spec import ModelSpec, initial_weights, load_spec
from harness.training import steady_epoch_seconds

SPECS = bench_specs(["mlp2", "cnn3_k3"])
LIMIT = bench_int("HARNESS_BENCH_LIMIT", 4000)
EPOCHS = max(bench_int("HARNESS_BENCH_EPOCHS", 4), 2)  # a steady figure needs two
ROUNDS = bench_int("HARNESS_BENCH_ROUNDS", 2)
DEVICE = os.environ.get("HARNESS_BENCH_DEVICE", "cpu")

EpochTimes = Callable[[], list[float]]  # one round of one side: its epoch times in seconds


def _bare_keras(model: Any, x: Any, y: Any, spec: ModelSpec) -> EpochTimes:
    """One `fit` over EPOCHS epochs, timed per epoch by a callback."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self.start)

    def run() -> list[float]:
        timer = EpochTimer()
        model.fit(x, y, batch_size=spec.train.batch_size, epochs=EPOCHS, shuffle=True,
                  verbose=0, callbacks=[timer])
        return timer.seconds

    return run


def _torch_optimizer(model: Any, spec: ModelSpec) -> Any:
    """torch.optim's own class for the spec's optimizer, as a PyTorch user writes it; the
    harness's Keras-maths optimizer where torch.optim has no such class."""
    import torch

    opt, params = spec.train.optimizer, model.net.parameters()
    if opt.name == "adam":
        return torch.optim.Adam(params, lr=opt.learning_rate, betas=(opt.beta_1, opt.beta_2),
                                eps=opt.epsilon)
    if opt.name == "adadelta":
        return torch.optim.Adadelta(params, lr=opt.learning_rate, rho=opt.rho, eps=opt.epsilon)
    if opt.name == "sgd":
        return torch.optim.SGD(params, lr=opt.learning_rate, momentum=opt.momentum,
                               nesterov=opt.nesterov)
    return model.optimizer


def _bare_torch(model: Any, data: Any, spec: ModelSpec) -> EpochTimes:
    """EPOCHS plain epochs over the device tensors."""
    import torch
    import torch.nn.functional as F

    net, optimizer, batch_size = model.net, _torch_optimizer(model, spec), spec.train.batch_size
    device = data.x.device

    def epoch() -> float:
        start = time.perf_counter()
        net.train()
        for index in torch.randperm(len(data.y), device=device).split(batch_size):
            loss = F.cross_entropy(net.logits(data.x[index]), data.y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return lambda: [epoch() for _ in range(EPOCHS)]


def _model(backend: Any, spec: ModelSpec) -> Any:
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    return model


def _round_summary(harness: list[tuple[float, float]], bare: list[float],
                   harness_first: bool) -> dict[str, Any]:
    recorded = steady_epoch_seconds([seconds for seconds, _ in harness])
    wall = steady_epoch_seconds([seconds for _, seconds in harness])
    bare_steady = steady_epoch_seconds(bare)
    return {"harness_first": harness_first, "harness_seconds": [s for s, _ in harness],
            "harness_wall_seconds": [w for _, w in harness], "bare_seconds": bare,
            "ratio": recorded / bare_steady, "wall_ratio": wall / bare_steady}


def compare(spec_name: str, backend_name: str, threads: int) -> dict[str, Any]:
    """In a process of its own (two frameworks' thread pools in one process disturb each
    other's timings): ROUNDS rounds of EPOCHS harness epochs and EPOCHS bare ones."""
    spec = load_spec(spec_name)
    backend = get_backend(backend_name, device=DEVICE, threads=threads)
    arrays = load_arrays(spec.input, limit=LIMIT, limit_test=1)
    n, batch_size = len(arrays.y_train), spec.train.batch_size
    data = backend.to_native(arrays.x_train, arrays.y_train)
    harness_model, bare_model = _model(backend, spec), _model(backend, spec)
    if backend_name == "keras":
        onehot = np.eye(10, dtype=np.float32)[arrays.y_train]
        bare = _bare_keras(bare_model, arrays.x_train, onehot, spec)
    else:
        bare = _bare_torch(bare_model, data, spec)
    epochs = count()

    def harness_epoch() -> tuple[float, float]:
        order = epoch_order(n, next(epochs), spec.train.seed, spec.train.shuffle)
        start = time.perf_counter()
        recorded = backend.train_epoch(harness_model, data, order, batch_size).seconds
        return recorded, time.perf_counter() - start

    rounds = []
    for number in range(ROUNDS):
        harness_first = number % 2 == 0
        bare_times = None if harness_first else bare()
        harness_times = [harness_epoch() for _ in range(EPOCHS)]
        bare_times = bare() if bare_times is None else bare_times
        rounds.append(_round_summary(harness_times, bare_times, harness_first))
    env = backend.environment()
    return {
        "spec": spec_name, "backend": backend_name, "device": DEVICE, "n_train": n,
        "batch_size": batch_size, "epochs_per_round": EPOCHS, "rounds": rounds,
        "ratio": statistics.median(r["ratio"] for r in rounds),
        "wall_ratio": statistics.median(r["wall_ratio"] for r in rounds),
        **{key: env.get(key) for key in ("intra_op_threads", "inter_op_threads",
                                         "compile_mode", "tf32", "layout", "data_device")},
    }


@pytest.mark.parametrize("backend_name", ["keras", "torch"])
@pytest.mark.parametrize("spec_name", SPECS)
def test_harness_epoch_vs_bare_framework_loop(benchmark: Any, spec_name: str, backend_name: str,
                                              bench_threads: int) -> None:
    from harness.backends.isolation import BackendProcess

    pytest.importorskip({"torch": "torch", "keras": "tensorflow"}[backend_name])
    result: dict[str, Any] = {}

    def in_own_process() -> None:  # the benchmark's own time is the whole comparison
        with BackendProcess() as worker:
            result.update(worker.call(__name__, compare.__name__, spec_name, backend_name,
                                      bench_threads))

    try:
        benchmark.pedantic(in_own_process, rounds=1, iterations=1)
    except BackendUnavailable as exc:
        pytest.skip(f"unavailable: {exc}")
    benchmark.group = f"training-epoch-vs-bare:{spec_name}"
    benchmark.extra_info.update(result)
    print(f"\n{spec_name} {backend_name}: harness / bare steady epoch "
          f"{result['ratio']:.3f} (wall {result['wall_ratio']:.3f})")
