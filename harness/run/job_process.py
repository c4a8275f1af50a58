"""One job of a matrix run, in its own process: train -> evaluate -> export -> parity -> latency.

    python -m harness.run.job_process RUN_DIR JOB_ID

The job works in a hidden partial folder and renames it to `jobs/<job_id>` only at the end,
with job.json saying ok or failed: a job that is killed leaves no folder that looks finished.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from functools import partial
from pathlib import Path
from typing import Any

from harness.env import utc_now
from harness.memory import peak_of, track_memory
from harness.results import RESULT_SCHEMA_VERSION, read_json, write_json_atomic
from harness.run import layout

STEPS = ("train", "export", "latency")


def partial_dir(run_dir: Path, job_id: str) -> Path:
    return Path(run_dir) / layout.JOBS_DIR / f".{job_id}.partial"


def job_config(run_dir: Path, job_id: str) -> dict[str, Any]:
    plan = read_json(Path(run_dir) / layout.RUN_FILE)
    for job in plan["jobs"]:
        if job["job_id"] == job_id:
            return job
    raise KeyError(f"job {job_id!r} is not in {run_dir / layout.RUN_FILE}")


def _data_dir(config: dict[str, Any]) -> Path | None:
    return Path(config["data_dir"]) if config.get("data_dir") else None


def _train(spec_file: Path, config: dict[str, Any], work: Path) -> None:
    from harness.training import TrainConfig, train_and_evaluate

    def show(record: Any, epochs: int) -> None:
        print(f"epoch {record.epoch}/{epochs} loss {record.train_loss:.4f} "
              f"acc {record.train_accuracy:.4f} {record.seconds:.2f}s", flush=True)

    train_and_evaluate(spec_file, TrainConfig(
        backend=config["backend"], device=config["device"], epochs=config["epochs"],
        seed=config["seed"], limit=config["limit"], limit_test=config["limit_test"],
        threads=config["threads"], data_dir=_data_dir(config), tf32=config["tf32"],
        layout=config["layout"]), out_dir=work, on_epoch=show)


def _export(config: dict[str, Any], work: Path) -> None:
    from harness.exporting import ExportError, export_model

    record = export_model(None, config["backend"], work / layout.ONNX_FILE, run_dir=work,
                          opset=config["opset"], limit_test=config["limit_test"],
                          threads=config["threads"], data_dir=_data_dir(config))
    if not record["passed"]:
        raise ExportError(f"ONNX parity failed: max |diff| {record['parity']['max_abs_diff']:.2e}")


def _latency(config: dict[str, Any], work: Path) -> None:
    """ONNX Runtime (the export above) and native latency per provider x batch size."""
    from harness.bench import bench_backend, input_batch, latency_result
    from harness.exporting import recorded_source, weights_source
    from harness.variants import VariantBench, VariantSettings

    source = weights_source(None, work)
    variants = VariantBench(VariantSettings(
        ort_variants=tuple(config["ort_variants"]), compile_modes=tuple(config["compile_modes"]),
        accuracy_gate=config["accuracy_gate"], data_dir=_data_dir(config),
        limit_test=config["limit_test"]))
    settings = {"providers": config["providers"], "batch_sizes": config["batch_sizes"],
                "threads": config["threads"], "warmup": config["latency_warmup"],
                "min_runs": config["latency_min_runs"],
                "min_seconds": config["latency_min_seconds"],
                "strict_providers": config["strict_providers"], "tf32": config["tf32"],
                "layout": config["layout"]}
    environments: dict[str, Any] = {}
    records = bench_backend(
        source, config["backend"], onnx_path=work / layout.ONNX_FILE,
        x=input_batch(source, max(config["batch_sizes"]), _data_dir(config)),
        environments=environments, variants=variants, **settings)
    result = latency_result(source.spec, {config["backend"]: recorded_source(
        source.description, work)}, {**settings, **variants.settings.as_dict()}, records,
        environments)
    write_json_atomic(work / layout.LATENCY_FILE, {**result, **variants.result()})


def _job_relative(message: str, work: Path) -> str:
    """Messages name files in the partial folder, which is renamed when the job ends: name
    them as the job folder sees them (`model.onnx.log`, not `jobs/.<job>.partial/...`)."""
    for folder in dict.fromkeys((str(work), str(work.resolve()))):
        message = message.replace(folder + os.sep, "")
    return message


def run_job(run_dir: Path, job_id: str) -> dict[str, Any]:
    """Run every step, recording the first failure; return the job record (also written)."""
    config = job_config(run_dir, job_id)
    work = partial_dir(run_dir, job_id)
    work.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"schema_version": RESULT_SCHEMA_VERSION, "kind": "job",
                              "job_id": job_id, "status": "ok", "error": None,
                              "failed_step": None, "started_utc": utc_now(), "config": config}
    start = time.perf_counter()
    train = partial(_train, layout.spec_file(run_dir, config["spec"]))
    memory: dict[str, Any] = {}  # per step: peak RSS of the job's process (harness.memory)
    for step, action in zip(STEPS, (train, _export, _latency), strict=True):
        print(f"step {step}", flush=True)
        try:
            with track_memory() as tracker:
                action(config, work)
        except Exception as exc:  # noqa: BLE001 - a failed job is recorded; the run goes on
            traceback.print_exc()
            error = _job_relative(f"{type(exc).__name__}: {str(exc).strip()}", work)
            record.update(status="failed", failed_step=step, error=error[:2000])
            break
        finally:
            memory[step] = tracker.result()
    record.update(finished_utc=utc_now(), seconds=time.perf_counter() - start,
                  memory={"steps": memory, "peak": peak_of(list(memory.values()))})
    write_json_atomic(work / layout.JOB_FILE, record)
    return record


def main(argv: list[str] | None = None) -> int:
    run_dir, job_id = (argv or sys.argv[1:])[:2]
    record = run_job(Path(run_dir), job_id)
    return 0 if record["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
