"""Training step time of every backend against native PyTorch, with the timing protocol
(harness.speed): Keras on TensorFlow, on JAX and on PyTorch, each in a process of its own
(a process holds one Keras backend), its windows of fixed optimizer steps interleaved with
PyTorch's; and PyTorch against a second copy of itself (A/A), whose interval is the noise
floor a verdict must clear. Compilation is kept apart (each side's warm-up seconds).

`extra_info` holds, per backend, the ratio to PyTorch (above 1: slower) with its 95 %
interval and verdict, the steady epoch estimate (steps per epoch x median step time) with its
interval, the warm-up seconds and how the backend ran; the table is printed. Nothing here
fails on a timing.

HARNESS_BENCH_SPECS (default: mlp5_bn,cnn3_k3), HARNESS_BENCH_BACKENDS (default: all),
HARNESS_BENCH_LIMIT training images (default 5,000), HARNESS_BENCH_WINDOWS window pairs
(default 7), HARNESS_BENCH_DEVICE (cpu or cuda), HARNESS_BENCH_THREADS.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from conftest import bench_int, bench_list, bench_specs

from harness.backends import backend_names, not_installed

SPECS = bench_specs(["mlp5_bn", "cnn3_k3"])
BACKENDS = bench_list("HARNESS_BENCH_BACKENDS", backend_names())
WINDOWS = bench_int("HARNESS_BENCH_WINDOWS", 7)
LIMIT = bench_int("HARNESS_BENCH_LIMIT", 5000)
DEVICE = os.environ.get("HARNESS_BENCH_DEVICE", "cpu")
REFERENCE = "torch"


def _rows(record: Any) -> dict[str, dict[str, Any]]:
    from harness.speed.intervals import noise_floor, verdict

    floor = noise_floor([c for c in record.comparisons if c.aa])
    rows = {}
    for c in record.comparisons:
        if c.kind != "training" or c.aa:
            continue
        epoch = record.epoch_estimate[c.a]
        rows[c.a] = {"ratio": c.ratio.estimate, "ci_low": c.ratio.ci_low,
                     "ci_high": c.ratio.ci_high, "verdict": verdict(c.ratio, floor),
                     "epoch_estimate_s": epoch.estimate, "epoch_ci": [epoch.ci_low,
                                                                      epoch.ci_high],
                     "warmup_s": c.warmup_seconds[c.a], "ran_as": record.backends[c.a],
                     "busy": c.busy}
    return rows


@pytest.mark.parametrize("spec_name", SPECS)
def test_training_step_ratios_of_every_backend(benchmark: Any, spec_name: str,
                                               bench_threads: int) -> None:
    from harness.spec import load_spec
    from harness.speed.compare import Protocol
    from harness.speed.intervals import floor_as_percent, noise_floor
    from harness.speed.spec_timing import SpecTiming, time_spec

    missing = {name: not_installed(name) for name in BACKENDS if not_installed(name)}
    backends = [name for name in BACKENDS if name not in missing]
    if REFERENCE not in backends or len(backends) < 2:
        pytest.skip(f"needs PyTorch and another backend; not installed: {missing}")
    spec = load_spec(spec_name)
    work = SpecTiming(spec, sorted(backends, key=lambda n: n == REFERENCE), bench_threads, None,
                      spec.train.seed, noise=True, batch_sizes=(), limit=LIMIT, device=DEVICE)
    record = benchmark.pedantic(time_spec, args=(work, Protocol(windows=WINDOWS)),
                                kwargs={"log": lambda line: None}, rounds=1, iterations=1)
    rows = _rows(record)
    floor = floor_as_percent(noise_floor([c for c in record.comparisons if c.aa]))
    benchmark.group = f"backend-ratios:{spec_name}"
    benchmark.extra_info.update({"spec": spec_name, "device": DEVICE, "threads": bench_threads,
                                 "n_train": LIMIT, "windows": WINDOWS, "reference": REFERENCE,
                                 "noise_floor": floor, "backends": rows,
                                 "not_installed": missing, "problems": record.problems})
    print(f"\n{spec_name} on {DEVICE}, {LIMIT} images, step time ÷ PyTorch's (95 % interval; "
          f"A/A noise floor {floor}):")
    for name, row in rows.items():
        print(f"  {name:<12} {row['ratio']:6.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}] "
              f"{row['verdict']:<13} epoch ≈ {row['epoch_estimate_s']:.2f} s, warm-up "
              f"{row['warmup_s']:.2f} s ({row['ran_as']}){' (busy)' if row['busy'] else ''}")
    assert set(rows) == set(backends) - {REFERENCE}
