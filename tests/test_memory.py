"""Peak memory (harness.measure.memory): a psutil RSS sampler beside the work, as
optimum-benchmark's
memory tracker; recorded per job step, per training run and per latency record."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from harness.measure.memory import MemoryTracker, peak_of, track_memory

HELD_MB = 120


def test_the_peak_includes_memory_the_work_held() -> None:
    with track_memory() as memory:
        block = np.ones(HELD_MB * 1024 * 1024 // 8)  # touched: resident, not just reserved
        time.sleep(0.05)
        del block
    result = memory.result()
    assert result["increase_mb"] >= 0.8 * HELD_MB
    assert result["peak_rss_mb"] == pytest.approx(result["baseline_rss_mb"]
                                                  + result["increase_mb"])
    assert result["samples"] >= 2


def test_idle_work_adds_next_to_nothing() -> None:
    with track_memory() as memory:
        time.sleep(0.02)
    assert memory.result()["increase_mb"] < 0.5 * HELD_MB


def test_the_sampler_stops_when_the_work_raises() -> None:
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="boom"), track_memory() as memory:
        raise RuntimeError("boom")
    assert threading.active_count() == before
    assert memory.result()["samples"] >= 1


def test_gpu_fields_say_why_they_are_empty_without_a_gpu() -> None:
    from conftest import cuda_available

    if cuda_available()[0]:
        pytest.skip("a GPU is present")
    with track_memory() as memory:
        pass
    result = memory.result()
    assert result["torch_cuda_peak_mb"] is None and result["gpu_note"]


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        MemoryTracker(0)
    tracker = MemoryTracker()
    with pytest.raises(RuntimeError, match="never started"):
        tracker.stop()
    tracker.start()
    with pytest.raises(RuntimeError, match="started already"):
        tracker.start()
    tracker.stop()


def test_peak_of_picks_the_highest_and_skips_missing() -> None:
    low, high = {"peak_rss_mb": 10.0}, {"peak_rss_mb": 30.0}
    assert peak_of([low, None, high]) is high
    assert peak_of([None]) is None


def test_a_matrix_job_records_peak_memory_per_step_and_passes_variants(
        tmp_path: Path) -> None:
    """One tiny job through `harness run`'s machinery: job.json has each step's peak,
    metrics.json the training's, every timed latency record its session's, and the variants
    asked for in the run's config were timed in the job."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from harness.records.io import read_json
    from harness.run.matrix import run_matrix
    from harness.run.plan import RunConfig

    spec = tmp_path / "mem_mlp.yaml"
    spec.write_text(
        "input: {dataset: mnist, shape: [784], scale: 255.0}\nlayers:\n"
        "  - {type: dense, units: 8, activation: relu}\n"
        "  - {type: dense, units: 10, activation: softmax}\n"
        "train: {optimizer: {name: sgd, learning_rate: 0.01, momentum: 0.0, nesterov: false},"
        " loss: categorical_crossentropy, batch_size: 32, epochs: 1, seed: 0, shuffle: true,"
        " validation: none}\n", encoding="utf-8")
    config = RunConfig(specs=[str(spec)], backends=["torch"], batch_sizes=[1], epochs=1,
                       limit=200, limit_test=100, threads=1, latency_min_runs=1,
                       latency_min_seconds=0.0, ort_variants=["opt-disable"])
    summary = run_matrix(config, tmp_path / "run", show=lambda line: None)
    assert summary["ok"] == 1, summary
    job = tmp_path / "run" / "jobs" / "mem_mlp--torch--seed0"
    memory = read_json(job / "job.json")["memory"]
    assert set(memory["steps"]) == {"train", "export", "latency"}
    assert memory["peak"]["peak_rss_mb"] == max(step["peak_rss_mb"]
                                                for step in memory["steps"].values())
    assert read_json(job / "metrics.json")["memory"]["peak_rss_mb"] > 0
    latency = read_json(job / "latency.json")
    timed = [r for r in latency["records"] + latency["variant_records"] if r["status"] == "ok"]
    assert timed and all(r["memory"]["peak_rss_mb"] > 0 for r in timed)
    assert {r["variant"] for r in latency["variant_records"]} == {"opt-disable"}
    assert latency["settings"]["ort_variants"] == ["opt-disable"]
