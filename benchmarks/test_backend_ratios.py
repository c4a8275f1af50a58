"""Steady epoch time of every backend side by side, as ratios, in one run: Keras on
TensorFlow, on JAX and on PyTorch, and native PyTorch, on one MLP and one CNN.

Each backend trains in a fresh process of its own (harness.backends.isolation: a process holds
one Keras backend), one after the other, with the same thread budget, data, initial weights and
batch order: the first epoch (tracing, compilation, warm-up) is kept apart and its compile part
recorded (`compile_seconds`, the first step of each batch shape), the steady figure is the
harness's one definition (the median of the epochs after the first). `extra_info` holds, per
backend, the seconds, the ratio to the reference backend (torch when it ran; above 1: slower),
the compile mode and what the framework reports it ran with. Nothing here fails on a timing.

HARNESS_BENCH_SPECS (default: mlp5_bn,cnn3_k3), HARNESS_BENCH_BACKENDS (default: all),
HARNESS_BENCH_LIMIT training images (default 5,000), HARNESS_BENCH_ROUNDS steady epochs
(default 3), HARNESS_BENCH_DEVICE (cpu or cuda), HARNESS_BENCH_THREADS.
"""

from __future__ import annotations

import os
from itertools import count
from typing import Any

import pytest
from conftest import bench_int, bench_list, bench_specs

from harness.backends import backend_names, not_installed
from harness.training import steady_epoch_seconds

SPECS = bench_specs(["mlp5_bn", "cnn3_k3"])
BACKENDS = bench_list("HARNESS_BENCH_BACKENDS", backend_names())
ROUNDS = bench_int("HARNESS_BENCH_ROUNDS", 3)
LIMIT = bench_int("HARNESS_BENCH_LIMIT", 5000)
DEVICE = os.environ.get("HARNESS_BENCH_DEVICE", "cpu")
REFERENCE = "torch"  # ratios are to it when it ran, else to the first backend that did
ENVIRONMENT_KEYS = ("keras_backend", "compile_mode", "compile_seconds", "intra_op_threads",
                    "inter_op_threads", "tf32", "layout", "data_device")


def epoch_seconds(backend_name: str, spec_name: str, device: str, threads: int, limit: int,
                  rounds: int) -> dict[str, Any]:
    """In the backend's own process: the first epoch and `rounds` steady ones, as `harness
    train` runs them (Backend.train_epoch over harness.data.epoch_order)."""
    from harness.backends import get_backend
    from harness.data import epoch_order, load_arrays
    from harness.spec import initial_weights, load_spec

    spec = load_spec(spec_name)
    backend = get_backend(backend_name, device=device, threads=threads)
    arrays = load_arrays(spec.input, limit=limit, limit_test=1)
    backend.seed(spec.train.seed)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    data = backend.to_native(arrays.x_train, arrays.y_train)
    epochs = count()
    seconds = [backend.train_epoch(model, data, epoch_order(
        len(arrays.y_train), next(epochs), spec.train.seed, spec.train.shuffle),
        spec.train.batch_size).seconds for _ in range(rounds + 1)]
    environment = backend.environment()
    return {"first_epoch_seconds": seconds[0], "steady_epochs_seconds": seconds[1:],
            "steady_epoch_seconds": steady_epoch_seconds(seconds),
            **{key: environment.get(key) for key in ENVIRONMENT_KEYS}}


def _in_own_process(backend_name: str, spec_name: str, threads: int) -> dict[str, Any]:
    from harness.backends.isolation import BackendProcess

    with BackendProcess() as worker:
        return worker.call(__name__, epoch_seconds.__name__, backend_name, spec_name, DEVICE,
                           threads, LIMIT, ROUNDS)


def _table(spec_name: str, results: dict[str, dict[str, Any]], reference: str) -> str:
    lines = [f"{spec_name} on {DEVICE}, {LIMIT} images: steady epoch seconds, ratio to "
             f"{reference}, compile mode (first-step seconds)"]
    for name, result in results.items():
        lines.append(f"  {name:<12} {result['steady_epoch_seconds']:8.3f} s "
                     f"{result['ratio']:6.2f}x  {result['compile_mode']} "
                     f"({result['compile_seconds']:.2f} s)")
    return "\n".join(lines)


@pytest.mark.parametrize("spec_name", SPECS)
def test_steady_epoch_ratios_of_every_backend(benchmark: Any, spec_name: str,
                                              bench_threads: int) -> None:
    if ROUNDS < 1:
        pytest.skip("HARNESS_BENCH_ROUNDS must be at least 1 for a steady figure")
    missing = {name: not_installed(name) for name in BACKENDS if not_installed(name)}
    results: dict[str, dict[str, Any]] = {}

    def every_backend() -> None:  # one round: the benchmark's own time is the whole comparison
        for name in BACKENDS:
            if name not in missing:
                results[name] = _in_own_process(name, spec_name, bench_threads)

    benchmark.group = f"backend-ratios:{spec_name}"
    benchmark.pedantic(every_backend, rounds=1, iterations=1)
    if not results:
        pytest.skip(f"no backend installed: {missing}")
    reference = REFERENCE if REFERENCE in results else next(iter(results))
    for result in results.values():
        result["ratio"] = (result["steady_epoch_seconds"]
                           / results[reference]["steady_epoch_seconds"])
    benchmark.extra_info.update({
        "spec": spec_name, "device": DEVICE, "threads": bench_threads, "n_train": LIMIT,
        "steady_epochs": ROUNDS, "reference": reference, "backends": results,
        "not_installed": missing,
    })
    print("\n" + _table(spec_name, results, reference))
    assert all(len(result["steady_epochs_seconds"]) == ROUNDS for result in results.values())
