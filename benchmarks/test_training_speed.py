"""Training speed per spec x backend: the first epoch (tracing, graph building, XLA
compilation, allocator warm-up) is timed on its own and kept apart; the benchmark rounds are
the steady epochs that follow, each one `Backend.train_epoch` over `harness.data.epoch_order`,
exactly as `harness train` runs them. `extra_info["steady_epoch_seconds"]` is the harness's
one steady figure (the median of the epochs after the first, as each epoch's timed region
records it); pytest-benchmark's own statistics time the whole `train_epoch` calls.

Widen with HARNESS_BENCH_SPECS=all; HARNESS_BENCH_LIMIT training images (default 5,000),
HARNESS_BENCH_ROUNDS steady epochs (default 3), HARNESS_BENCH_DEVICE (cpu or cuda, default cpu),
HARNESS_BENCH_THREADS.
"""

from __future__ import annotations

import os
from itertools import count
from typing import Any

import pytest
from conftest import bench_int, bench_list, bench_specs

from harness.backends import BackendUnavailable, backend_names, get_backend
from harness.data import epoch_order, load_arrays
from harness.env import package_versions
from harness.spec import initial_weights, load_spec
from harness.training import steady_epoch_seconds

SPECS = bench_specs(["mlp5_bn", "cnn3_k3"])
BACKENDS = bench_list("HARNESS_BENCH_BACKENDS", backend_names())
ROUNDS = bench_int("HARNESS_BENCH_ROUNDS", 3)
# fewer images than the overhead benchmark by default: `pytest benchmarks/` stays a few minutes
LIMIT = bench_int("HARNESS_BENCH_LIMIT", 5000)
DEVICE = os.environ.get("HARNESS_BENCH_DEVICE", "cpu")


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("spec_name", SPECS)
def test_training_speed(benchmark: Any, spec_name: str, backend_name: str,
                        bench_threads: int) -> None:
    spec = load_spec(spec_name)
    try:
        backend = get_backend(backend_name, device=DEVICE, threads=bench_threads)
    except BackendUnavailable as exc:
        pytest.skip(f"unavailable: {exc}")
    arrays = load_arrays(spec.input, limit=LIMIT, limit_test=1)
    backend.seed(spec.train.seed)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    data = backend.to_native(arrays.x_train, arrays.y_train)
    n, batch_size = len(arrays.y_train), spec.train.batch_size
    epochs = count()
    steady: list[float] = []  # the backend's own timing of the training steps

    def epoch() -> float:
        order = epoch_order(n, next(epochs), spec.train.seed, spec.train.shuffle)
        return backend.train_epoch(model, data, order, batch_size).seconds

    first = epoch()  # kept apart: tracing and compilation happen here

    def steady_epoch() -> None:
        steady.append(epoch())

    benchmark.group = f"training-speed:{spec_name}"
    benchmark.pedantic(steady_epoch, rounds=ROUNDS, iterations=1)
    steady_seconds = steady_epoch_seconds([first, *steady])  # the harness's one definition
    env = backend.environment()
    benchmark.extra_info.update({
        "spec": spec_name, "backend": backend_name, "device": DEVICE,
        "threads": bench_threads, "n_train": n, "batch_size": batch_size,
        "first_epoch_seconds": first, "steady_epochs_seconds": steady,
        "steady_epoch_seconds": steady_seconds,
        "samples_per_second": n / steady_seconds if steady_seconds else None,
        # as the framework reports them (read back, see Backend.environment)
        **{key: env.get(key) for key in ("intra_op_threads", "inter_op_threads",
                                         "compile_mode", "tf32", "layout", "data_device")},
        "versions": package_versions(),
    })
    print(f"\n{spec_name} {backend_name} on {DEVICE}: first epoch {first:.2f}s, steady "
          f"{steady_seconds:.2f}s ({n / steady_seconds:,.0f} samples/s)")
    assert len(steady) == ROUNDS
