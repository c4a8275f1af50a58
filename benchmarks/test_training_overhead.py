"""The harness's training epoch vs a minimal hand-written loop in the same framework.

Both run on the same spec, model and data, interleaved round by round so that machine noise hits
both alike; the ratio harness / hand-written is reported in the benchmark JSON (`extra_info`)
and should stay close to 1. It is not asserted: on a shared machine a ratio is a measurement,
not a verdict (extra_info["machine_load"] says whether the machine was busy). Widen with
HARNESS_BENCH_SPECS=all (or a comma-separated list).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
from conftest import bench_int, bench_specs

from harness.backends import get_backend
from harness.data import epoch_order, load_arrays
from harness.spec import initial_weights, load_spec

SPECS = bench_specs(["mlp5_bn", "cnn3_k3"])
ROUNDS = bench_int("HARNESS_BENCH_ROUNDS", 3)
LIMIT = bench_int("HARNESS_BENCH_LIMIT", 5000)


def _bare_torch_epoch(model, data, spec) -> Callable[[], None]:
    """The loop a PyTorch user writes: randperm, index, forward, backward, step."""
    import torch
    import torch.nn.functional as F

    opt = spec.train.optimizer
    net = model.net
    optimizers = {
        "adam": lambda: torch.optim.Adam(net.parameters(), lr=opt.learning_rate,
                                         betas=(opt.beta_1, opt.beta_2), eps=opt.epsilon),
        "sgd": lambda: torch.optim.SGD(net.parameters(), lr=opt.learning_rate,
                                       momentum=opt.momentum),
        "adadelta": lambda: torch.optim.Adadelta(net.parameters(), lr=opt.learning_rate,
                                                 rho=opt.rho, eps=opt.epsilon),
    }
    optimizer = optimizers.get(opt.name, lambda: model.optimizer)()
    batch_size = spec.train.batch_size

    def epoch() -> None:
        net.train()
        perm = torch.randperm(len(data.y))
        for first in range(0, len(perm), batch_size):
            idx = perm[first:first + batch_size]
            loss = F.cross_entropy(net.logits(data.x[idx]), data.y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return epoch


def _bare_keras_epoch(model, data, spec) -> Callable[[], None]:
    """What a Keras user writes: fit with Keras' own shuffling."""
    def epoch() -> None:
        model.fit(data.x, data.y_onehot, batch_size=spec.train.batch_size, epochs=1,
                  shuffle=True, verbose=0)

    return epoch


BARE = {"torch": _bare_torch_epoch, "keras": _bare_keras_epoch}


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.parametrize("backend_name", list(BARE))
@pytest.mark.parametrize("spec_name", SPECS)
def test_training_epoch_overhead(benchmark, spec_name: str, backend_name: str,
                                 bench_threads: int) -> None:
    pytest.importorskip({"torch": "torch", "keras": "tensorflow"}[backend_name])
    spec = load_spec(spec_name)
    arrays = load_arrays(spec.input, limit=LIMIT, limit_test=100)
    backend = get_backend(backend_name, threads=bench_threads)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    data = backend.to_native(arrays.x_train, arrays.y_train)
    epochs = iter(range(10_000))

    def harness_epoch() -> None:
        order = epoch_order(len(arrays.y_train), next(epochs), spec.train.seed)
        backend.train_epoch(model, data, order, spec.train.batch_size)

    bare_epoch = BARE[backend_name](model, data, spec)
    harness_epoch(), bare_epoch()  # warm-up: tracing, allocator, caches
    harness_times, bare_times = [], []
    for _ in range(ROUNDS):
        harness_times.append(_timed(harness_epoch))
        bare_times.append(_timed(bare_epoch))
    ratio = min(harness_times) / min(bare_times)
    benchmark.group = f"training-epoch:{spec_name}"
    benchmark.extra_info.update({
        "backend": backend_name, "spec": spec_name, "n_train": LIMIT, "threads": bench_threads,
        "harness_seconds": harness_times, "bare_seconds": bare_times,
        "overhead_ratio_min": ratio,
        "overhead_ratio_median": statistics.median(harness_times) / statistics.median(bare_times),
    })
    # one more harness epoch for the JSON; the ratio above comes from the interleaved rounds
    benchmark.pedantic(harness_epoch, rounds=1, iterations=1)
    print(f"\n{spec_name} {backend_name}: harness {min(harness_times):.3f}s, hand-written "
          f"{min(bare_times):.3f}s, ratio {ratio:.3f}")
