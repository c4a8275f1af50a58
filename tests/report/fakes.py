"""Builders of run folders for the report tests: real training and export, synthetic latency.

latency.json is synthetic (made-up values in the harness.latency.bench schema) so the tests need
neither a GPU nor long timing loops.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.measure.environment import utc_now
from harness.records import folders
from harness.records.io import write_json_atomic
from harness.spec import load_spec, spec_hash

SPECS = ("mlp2", "mlp2_bn")
BACKENDS = ("torch", "keras")
BATCH_SIZES = (1, 32)
FAILED_JOB = "mlp2-keras-seed1"
FAILED_ERROR = "ExportError: exporting spec 'mlp2' failed: converter crashed"


def job_id(spec: str, backend: str, seed: int = 0) -> str:
    return f"{spec}-{backend}-seed{seed}"


def job_record(spec: str, backend: str, seed: int, status: str = "ok",
               error: str | None = None, failed_step: str | None = None,
               overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """job.json as `harness run` writes it."""
    return {
        "schema_version": 1, "kind": "job", "job_id": job_id(spec, backend, seed),
        "status": status, "error": error, "failed_step": failed_step,
        "started_utc": utc_now(), "finished_utc": utc_now(), "seconds": 3.5,
        "config": {"spec": spec, "spec_hash": spec_hash(load_spec(spec)), "backend": backend,
                   "seed": seed, "overrides": overrides or {}, "epochs": 2, "limit": 500,
                   "limit_test": 200, "providers": ["cpu", "cuda"],
                   "batch_sizes": list(BATCH_SIZES), "device": "cpu", "threads": 2},
    }


def machine_load(noisy: bool) -> dict[str, Any]:
    """A load record as harness.measure.machine_load.judge writes it: others used 1.5 cores (noisy)
    or 0.02 of one (quiet)."""
    return {"others_cores": 1.5 if noisy else 0.02, "cores": 2, "seconds": 1.0,
            "load_average_1m": 2.5 if noisy else 0.1, "threshold_cores": 0.25, "noisy": noisy}


def stats(p50: float, batch_size: int, noisy: bool = False) -> dict[str, Any]:
    return {"p50_ms": p50, "p90_ms": p50 * 1.2, "p99_ms": p50 * 1.5, "mean_ms": p50 * 1.05,
            "std_ms": p50 * 0.1, "min_ms": p50 * 0.9, "max_ms": p50 * 2, "runs": 200,
            "throughput": batch_size / (p50 * 1.05e-3), "batch_size": batch_size,
            "machine_load": machine_load(noisy)}


def latency_record(runtime: str, backend: str, provider: str, mode: str, batch_size: int,
                   p50: float | None, noisy: bool = False) -> dict[str, Any]:
    ok = p50 is not None
    used = f"{provider.upper()}ExecutionProvider" if runtime == "onnxruntime" else provider
    return {"runtime": runtime, "backend": backend, "provider": provider,
            "provider_used": used if ok else None,
            "mode": mode, "batch_size": batch_size, "status": "ok" if ok else "unavailable",
            "reason": None if ok else "CUDAExecutionProvider is not available", "threads": 2,
            "graph_optimization_level": "all",
            "stats": stats(p50, batch_size, noisy) if ok else None}


def synthetic_latency(spec: str, backend: str, scale: float = 1.0) -> dict[str, Any]:
    """ORT session_run and native on the CPU at each batch size; CUDA unavailable."""
    base = (0.05 if spec == "mlp2" else 0.07) * (1.3 if backend == "keras" else 1.0) * scale
    records = []
    for size in BATCH_SIZES:
        records.append(latency_record("onnxruntime", backend, "cpu", "session_run", size,
                                      base * (1 + size / 8)))
        records.append(latency_record("native", backend, "cpu", "native", size,
                                      4 * base * (1 + size / 16)))
        records.append(latency_record("onnxruntime", backend, "cuda", "session_run", size, None))
    return {"schema_version": 1, "kind": "latency", "spec": {"name": spec}, "backend": backend,
            "records": records}


def build_job(run_dir: Path, spec: str, backend: str, seed: int = 0) -> Path:
    from harness.export.driver import export_model
    from harness.training import TrainConfig, train_and_evaluate

    out = folders.job_dir(run_dir, job_id(spec, backend, seed))
    train_and_evaluate(spec, TrainConfig(backend=backend, epochs=2, limit=500, limit_test=200,
                                         seed=seed, threads=2), out_dir=out)
    export_model(None, backend, out / folders.ONNX_FILE, run_dir=out, limit_test=200, threads=2)
    write_json_atomic(out / folders.LATENCY_FILE, synthetic_latency(spec, backend))
    write_json_atomic(out / folders.JOB_FILE, job_record(spec, backend, seed))
    return out


def add_failed_job(run_dir: Path) -> None:
    out = folders.job_dir(run_dir, FAILED_JOB)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / folders.JOB_FILE, job_record(
        "mlp2", "keras", 1, status="failed", error=FAILED_ERROR, failed_step="export"))


def write_benchmark_json(path: Path, noisy: bool = False) -> Path:
    """A pytest-benchmark file: two latency benchmarks and one without extra_info; the ORT one
    timed on a busy machine when `noisy`."""
    def bench(name: str, median_s: float, extra: dict[str, Any] | None) -> dict[str, Any]:
        return {"name": name, "group": "latency", "extra_info": extra or {},
                "stats": {"median": median_s, "mean": median_s * 1.1, "min": median_s * 0.9,
                          "max": median_s * 2, "stddev": median_s * 0.05, "rounds": 50,
                          "ops": 1 / (median_s * 1.1)}}
    extra = {"spec": "mlp2", "backend": "torch", "runtime": "onnxruntime", "provider": "cpu",
             "provider_used": "CPUExecutionProvider", "mode": "io_binding", "batch_size": 64}
    payload = {"machine_info": {"node": "test"}, "commit_info": {"id": "abc"},
               "datetime": "2024-01-01T00:00:00", "version": "4.0.0",
               "benchmarks": [bench("test_ort[mlp2-torch-64]", 0.0004,
                                    {**extra, "machine_load": machine_load(noisy)}),
                              bench("test_native[mlp2-torch-64]", 0.0012,
                                    {**extra, "runtime": "native", "mode": "native",
                                     "machine_load": machine_load(False)}),
                              bench("test_something_else", 0.1, None)]}
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def write_metrics_only_job(run_dir: Path, spec: str, backend: str, seed: int, accuracy: float,
                           epoch_s: float, p50_ms: float | None = None,
                           noisy: tuple[bool, bool] = (False, False)) -> None:
    """A job with hand-set numbers (no training): for comparisons with many seeds. Two epochs
    of `epoch_s` each, so the steady figure (the median of the epochs after the first) is
    `epoch_s` too. `noisy`: whether its epochs and its latency were timed on a busy machine."""
    out = folders.job_dir(run_dir, job_id(spec, backend, seed))
    write_json_atomic(out / folders.METRICS_FILE, {
        "schema_version": 1, "kind": "train", "spec": {"name": spec}, "backend": backend,
        "seed": seed, "test_accuracy": accuracy, "test_loss": 1 - accuracy,
        "history": [{"epoch": epoch, "train_loss": 0.5, "train_accuracy": 0.9, "val_loss": 0.4,
                     "val_accuracy": 0.9, "seconds": epoch_s,
                     "machine_load": machine_load(noisy[0])} for epoch in (1, 2)],
        "timing": {"first_epoch_seconds": epoch_s, "mean_epoch_seconds": epoch_s,
                   "steady_epoch_seconds": epoch_s, "samples_per_second": 1000 / epoch_s},
        "params": {"total": 100}})
    if p50_ms is not None:
        write_json_atomic(out / folders.LATENCY_FILE, {"schema_version": 1, "kind": "latency",
            "records": [latency_record("onnxruntime", backend, "cpu", "session_run", 1,
                                       p50_ms, noisy[1])]})
    write_json_atomic(out / folders.JOB_FILE, job_record(spec, backend, seed))


def write_study_job(run_dir: Path, spec: str, backend: str, seed: int, accuracy: float,
                    epoch_s: float, p50_ms: dict[str, dict[int, float]], epochs: int = 3,
                    busy_epochs: bool = False, confusion: list[list[int]] | None = None
                    ) -> None:
    """A finished job with hand-set numbers and no training: `epochs` epochs (the first twice
    as long as the steady ones, `epoch_s`), and CPU latency `p50_ms[runtime][batch size]` for
    "onnxruntime" and "native". `busy_epochs`: every epoch timed on a busy machine;
    `confusion`: its test confusion matrix (rows: labels, columns: predictions)."""
    out = folders.job_dir(run_dir, job_id(spec, backend, seed))
    history = [{"epoch": epoch, "train_loss": 1 / epoch + seed / 100, "train_accuracy": 0.9,
                "val_loss": 1.2 / epoch + seed / 100, "val_accuracy": accuracy,
                "seconds": epoch_s * (2 if epoch == 1 else 1),
                "machine_load": machine_load(busy_epochs)} for epoch in range(1, epochs + 1)]
    write_json_atomic(out / folders.METRICS_FILE, {
        "schema_version": 1, "kind": "train", "spec": {"name": spec}, "backend": backend,
        "seed": seed, "test_accuracy": accuracy, "test_loss": 1 - accuracy, "history": history,
        "timing": {"first_epoch_seconds": 2 * epoch_s, "mean_epoch_seconds": epoch_s,
                   "steady_epoch_seconds": epoch_s, "samples_per_second": 500 / epoch_s},
        "params": {"total": 100}, "confusion_matrix": confusion,
        "environment": {"machine": {"cpu": "Test CPU 3000", "logical_cores": 2},
                        "packages": {backend: "1.0"},
                        "backend": {"intra_op_threads": 2, "inter_op_threads": 1}}})
    records = [latency_record(runtime, backend, "cpu", mode, size, p50)
               for runtime, mode in (("onnxruntime", "session_run"), ("native", "native"))
               for size, p50 in p50_ms[runtime].items()]
    write_json_atomic(out / folders.LATENCY_FILE, {"schema_version": 1, "kind": "latency",
                                                  "records": records})
    job = job_record(spec, backend, seed)
    job["config"].update(epochs=epochs, providers=["cpu"])
    write_json_atomic(out / folders.JOB_FILE, job)
