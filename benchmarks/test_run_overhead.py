"""What a whole `harness run` costs beyond its timed work, as ratios (nothing is asserted about
timings; on a shared machine a ratio is a measurement, not a verdict):

- the quick zoo (specs x keras,torch, 1 epoch on HARNESS_BENCH_LIMIT training images, CPU
  latency at batch 1 and 32) with every job in a fresh interpreter (`--fresh-processes`: how
  jobs ran before warm job servers) and forked from warm job servers (the default):
  `extra_info["ratio"]` = warm / fresh wall time, and each mode's mean job phases;
- short jobs with `--workers 2` against one at a time on the same machine:
  `extra_info["speedup"]` = one-at-a-time / two-workers wall time;
- the quick zoo as docs/benchmarks.md runs it (`--workers 2 --threads 1`, one job per core):
  its wall time against the 10-minute target (`extra_info["target_ratio"]` = wall / 600 s)
  and where the jobs' time went (`phase_seconds`: each phase summed over the jobs).

HARNESS_BENCH_SPECS (default mlp2,cnn3_k3; `all` is the quick zoo of docs/benchmarks.md's target),
HARNESS_BENCH_LIMIT (default 5000), HARNESS_BENCH_TEST_LIMIT (default: the whole test set),
HARNESS_BENCH_LATENCY_SECONDS (per latency figure, default 0.5).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import bench_int, bench_specs

from harness.records import folders
from harness.records.io import read_json
from harness.run.executors.local import LocalExecutor
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig

SPECS = bench_specs(["mlp2", "cnn3_k3"])
LIMIT = bench_int("HARNESS_BENCH_LIMIT", 5000)
TEST_LIMIT = bench_int("HARNESS_BENCH_TEST_LIMIT", 0) or None
LATENCY_SECONDS = float(os.environ.get("HARNESS_BENCH_LATENCY_SECONDS", "0.5"))

pytest.importorskip("torch")
pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")


def _config(specs: list[str], limit: int, threads: int | None) -> RunConfig:
    return RunConfig(specs=specs, backends=["keras", "torch"], batch_sizes=[1, 32], epochs=1,
                     limit=limit, limit_test=TEST_LIMIT, threads=threads,
                     latency_min_seconds=LATENCY_SECONDS)


def _timed_run(config: RunConfig, out: Path, executor: LocalExecutor) -> float:
    start = time.perf_counter()
    summary = run_matrix(config, out, show=lambda line: None, executor=executor)
    seconds = time.perf_counter() - start
    if summary["failed"]:
        pytest.fail(f"jobs failed in {out}: {summary['failed'][:2]}")
    return seconds


def _phases(out: Path, combine: Any = statistics.mean) -> dict[str, float]:
    """Each job phase (and the total) over the run's jobs, by `combine` (mean, sum)."""
    records = [read_json(p / folders.JOB_FILE) for p in folders.finished_job_dirs(out)]
    names = [*folders.JOB_PHASES, "total"]
    return {name: combine(r["phases"].get(name, 0.0) for r in records) for name in names}


def test_quick_zoo_fresh_processes_vs_warm_servers(benchmark: Any, tmp_path: Path) -> None:
    config = _config(SPECS, LIMIT, threads=None)
    fresh = _timed_run(config, tmp_path / "fresh", LocalExecutor(warm=False))
    warm_out = tmp_path / "warm"
    warm = benchmark.pedantic(_timed_run, args=(config, warm_out, LocalExecutor(warm=True)),
                              rounds=1, iterations=1)
    benchmark.group = "run-overhead:quick-zoo"
    benchmark.extra_info.update({
        "specs": SPECS, "jobs": 2 * len(SPECS), "limit": LIMIT, "fresh_seconds": fresh,
        "warm_seconds": warm, "ratio": warm / fresh,
        "fresh_phases": _phases(tmp_path / "fresh"), "warm_phases": _phases(warm_out)})
    print(f"\nquick zoo ({2 * len(SPECS)} jobs): warm / fresh wall time {warm / fresh:.2f}")


def test_two_workers_vs_one_at_a_time_for_short_jobs(benchmark: Any, tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two usable cores")
    config = _config(SPECS, min(LIMIT, 1000), threads=1)  # short jobs, one core each
    one = _timed_run(config, tmp_path / "one", LocalExecutor(warm=True))
    two = benchmark.pedantic(_timed_run, args=(config, tmp_path / "two",
                                               LocalExecutor(workers=2, threads=1, warm=True)),
                             rounds=1, iterations=1)
    benchmark.group = "run-overhead:workers"
    benchmark.extra_info.update({"specs": SPECS, "jobs": 2 * len(SPECS), "one_seconds": one,
                                 "two_workers_seconds": two, "speedup": one / two})
    print(f"\n--workers 2 over one at a time: {one / two:.2f}x")


def test_quick_zoo_on_two_workers(benchmark: Any, tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two usable cores")
    out = tmp_path / "zoo"
    wall = benchmark.pedantic(_timed_run, args=(_config(SPECS, LIMIT, threads=1), out,
                                                LocalExecutor(workers=2, threads=1, warm=True)),
                              rounds=1, iterations=1)
    benchmark.group = "run-overhead:quick-zoo-two-workers"
    benchmark.extra_info.update({"specs": SPECS, "jobs": 2 * len(SPECS), "limit": LIMIT,
                                 "wall_seconds": wall, "target_ratio": wall / 600,
                                 "phase_seconds": _phases(out, sum)})
    print(f"\nquick zoo ({2 * len(SPECS)} jobs) on two workers: {wall / 60:.1f} min")
