"""Training step time of every backend against native PyTorch, with the timing protocol
(harness.speed): Keras on TensorFlow, on JAX and on PyTorch, each in a process of its own
(a process holds one Keras backend), its windows of fixed optimizer steps interleaved with
PyTorch's; and PyTorch against a second copy of itself (A/A), whose interval is the noise
floor a verdict must clear. Compilation is kept apart (each side's warm-up seconds).

`extra_info["ratios"]` holds, per backend, the ratio to PyTorch (above 1: slower) with its
95 % interval and verdict; `extra_info["epochs"]` the steady epoch estimate (steps per epoch x
median step time) with its interval, the warm-up seconds and how the backend ran. The rows are
printed and gathered in the suite's summary. Nothing here fails on a timing.

HARNESS_BENCH_SPECS (default: mlp5_bn,cnn3_k3), HARNESS_BENCH_BACKENDS (default: all),
HARNESS_BENCH_LIMIT training images (default 5,000), HARNESS_BENCH_WINDOWS window pairs
(default 7), HARNESS_BENCH_DEVICE (cpu or cuda), HARNESS_BENCH_THREADS.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from conftest import bench_int, bench_list, bench_specs
from ratios import record_rows, row_line

from harness.backends import backend_names, not_installed

SPECS = bench_specs(["mlp5_bn", "cnn3_k3"])
BACKENDS = bench_list("HARNESS_BENCH_BACKENDS", backend_names())
WINDOWS = bench_int("HARNESS_BENCH_WINDOWS", 7)
LIMIT = bench_int("HARNESS_BENCH_LIMIT", 5000)
DEVICE = os.environ.get("HARNESS_BENCH_DEVICE", "cpu")
REFERENCE = "torch"


def _epochs(record: Any) -> dict[str, dict[str, Any]]:
    """Each backend's steady epoch estimate with its interval, warm-up and how it ran."""
    warmup = {c.a: c.warmup_seconds[c.a] for c in record.comparisons
              if c.kind == "training" and not c.aa}
    return {name: {"epoch_estimate_s": estimate.estimate,
                   "epoch_ci": [estimate.ci_low, estimate.ci_high],
                   "warmup_s": warmup.get(name), "ran_as": record.backends.get(name)}
            for name, estimate in record.epoch_estimate.items()}


@pytest.mark.parametrize("spec_name", SPECS)
def test_training_step_ratios_of_every_backend(benchmark: Any, spec_name: str,
                                               bench_threads: int,
                                               capsys: pytest.CaptureFixture) -> None:
    from harness.measure.protocol import Protocol
    from harness.spec import load_spec
    from harness.speed.spec_timing import SpecTiming, time_spec

    missing = {name: not_installed(name) for name in BACKENDS if not_installed(name)}
    backends = [name for name in BACKENDS if name not in missing]
    if REFERENCE not in backends or len(backends) < 2:
        pytest.skip(f"needs PyTorch and another backend; not installed: {missing}")
    spec = load_spec(spec_name)
    work = SpecTiming(spec, sorted(backends, key=lambda n: n == REFERENCE), bench_threads, None,
                      spec.train.seed, noise=True, batch_sizes=(), limit=LIMIT, device=DEVICE)
    benchmark.group = f"backend-ratios:{spec_name}"
    record = benchmark.pedantic(time_spec, args=(work, Protocol(windows=WINDOWS)),
                                kwargs={"log": lambda line: None}, rounds=1, iterations=1)
    benchmark.extra_info.update({"spec": spec_name, "device": DEVICE, "threads": bench_threads,
                                 "n_train": LIMIT, "windows": WINDOWS, "reference": REFERENCE,
                                 "epochs": _epochs(record), "not_installed": missing})
    rows = record_rows(benchmark, f"{spec_name} training on {DEVICE}, {LIMIT} images", record)
    with capsys.disabled():
        print(f"\n{spec_name} training on {DEVICE}, {LIMIT} images ({bench_threads} threads):")
        for row in rows:
            print("  " + row_line(row))
        for name, epoch in _epochs(record).items():
            print(f"  {name:<12} epoch ≈ {epoch['epoch_estimate_s']:.2f} s "
                  f"[{epoch['epoch_ci'][0]:.2f}, {epoch['epoch_ci'][1]:.2f}], warm-up "
                  f"{epoch['warmup_s'] or 0:.2f} s ({epoch['ran_as']})")
    assert {row["a"] for row in rows if not row["verdict"].startswith("A/A")} == (
        set(backends) - {REFERENCE})
