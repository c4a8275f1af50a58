"""Read a RUN_DIR (see harness/records/folders.py) into pandas frames for `harness report` and
`compare`.

Every file is optional: a failed job may stop before metrics.json, the ONNX record or
latency.json, and an interrupted run has no summary.json. What is missing becomes NaN plus a
note, never an exception, so a half-finished run still gets a report. A record or model file
that is there but damaged (harness.records.checks) is not read: a note names its file and
field, and its job is shown as damaged. Each record is read once, here, as its model
(harness.records.models); the sections take what this read (RunData).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from harness.measure.machine_load import is_noisy
from harness.measure.speed_load import SpeedData, load_speed
from harness.records import folders
from harness.records.checks import DamagedRecord, model_file_damage, read_record
from harness.records.folders import JobFolder
from harness.records.models import (
    AnyRecord,
    Epoch,
    OnnxInfo,
    Parity,
    PartialExport,
    PartialJob,
    PartialLatency,
    PartialTraining,
    Record,
    RunSummary,
)
from harness.report.retimed import apply_retimes, no_retimes
from harness.report.specs import point_label, spec_reference, study_of
from harness.training import EAGER

R = TypeVar("R", bound=Record)

# The columns every latency frame has, whatever its source (run or pytest-benchmark).
LATENCY_COLUMNS = [
    "source", "job_id", "spec", "point", "backend", "seed", "runtime", "provider",
    "provider_used", "mode", "batch_size", "status", "reason", "threads", "p50_ms", "p90_ms",
    "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "runs", "throughput", "mixed",
    # timed on a busy machine (harness.measure.machine_load); others' cores
    "noisy", "others_cores",
]
# What each framework ran with, read back from it (metrics.json environment.backend).
FRAMEWORK_SETTINGS = ["compile_mode", "tf32", "layout", "intra_op_threads", "inter_op_threads",
                      "data_device"]
# Seconds of each part of a job (job.json `phases`, harness.records.folders.JOB_PHASES).
PHASE_COLUMNS = [f"phase_{name}_s" for name in (*folders.JOB_PHASES, "total")]
# Fixed columns, so a run whose jobs all failed early still gives frames the tables can read.
JOB_NUMERIC = [
    "job_seconds", "seed", "published_test_accuracy", "published_test_loss", "test_accuracy",
    "test_loss", "final_train_loss", "final_val_loss", "first_epoch_s", "compile_s",
    "steady_epoch_s",
    "mean_epoch_s", "samples_per_second", "params_total", "params_trainable", "n_train", "n_test",
    "trained_epochs", "parity_max_abs_diff", "parity_native_accuracy", "parity_onnx_accuracy",
    "parity_argmax_agreement", "onnx_opset", "onnx_nodes", "onnx_bytes",
    "load_unknown_epochs", "resumed_after_epoch", "predicted_classes",
    *PHASE_COLUMNS,
]
JOB_COLUMNS = [
    "job_id", "status", "failed_step", "error", "spec", "spec_hash", "backend", "point",
    "overrides", "device", "compile", "study", "published_ambiguity", "config", "started_utc",
    "finished_utc", "has_metrics", "has_export", "parity_passed",
    "parity_provider", "job_dir", "weights_file", "noisy_first_epoch_s",
    "noisy_steady_epoch_s", *JOB_NUMERIC, *FRAMEWORK_SETTINGS,
]
_STAT_KEYS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "runs",
              "throughput")


@dataclass
class RunData:
    """One run directory, as frames. `jobs` has one row per job folder (ok or failed)."""

    run_dir: Path
    run: dict[str, Any] | None
    summary: RunSummary | None
    jobs: pd.DataFrame
    history: pd.DataFrame  # one row per job x epoch
    latency: pd.DataFrame  # LATENCY_COLUMNS, one row per latency record
    confusion: dict[str, np.ndarray] = field(default_factory=dict)  # job_id -> counts
    environment: dict[str, Any] = field(default_factory=dict)  # of the first trained job
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)  # first per backend
    notes: list[str] = field(default_factory=list)
    # the protocol's speed records (harness.speed, RUN_DIR/speed): none for older runs
    speed: SpeedData = field(default_factory=SpeedData)
    # each job's latency.json by job id (the variants section reads its variants)
    latency_records: dict[str, PartialLatency] = field(default_factory=dict)


def read_optional(path: Path, model: type[R], damage: list[DamagedRecord]) -> R | None:
    """The record at `path` as `model`; None when there is none, or when it is damaged (then
    in `damage`)."""
    if not path.is_file():
        return None
    try:
        return read_record(path, model)
    except DamagedRecord as exc:
        damage.append(exc)
        return None


def _given(record: Record | None) -> bool:
    """A record that is there and gives any field (`{}` gives none)."""
    return record is not None and bool(record.as_read())


def _unreadable(folder: Path, exc: DamagedRecord) -> str:
    return f"{folder / exc.name}: unreadable ({exc.detail})"


def _epoch_load_fields(history: list[Epoch]) -> dict[str, Any]:
    """Whether the first epoch, and any epoch counted as steady (all after the first; a run of
    one epoch has no steady figure, so nothing to mark), trained on a busy machine; and how
    many epochs have no known load."""
    noisy = [is_noisy(epoch.machine_load) for epoch in history]
    unknown = [(epoch.machine_load or {}).get("others_cores") is None for epoch in history]
    return {"noisy_first_epoch_s": bool(noisy[:1] and noisy[0]),
            "noisy_steady_epoch_s": any(noisy[1:]),
            "load_unknown_epochs": sum(unknown)}


def _metric_fields(metrics: PartialTraining | None) -> dict[str, Any]:
    if metrics is None or not _given(metrics):
        return {"has_metrics": False}
    history = metrics.history
    last = history[-1] if history else Epoch()
    timing, params = metrics.timing or {}, metrics.params or {}
    framework = (metrics.environment or {}).get("backend") or {}
    return {
        "has_metrics": True,
        "test_accuracy": metrics.test_accuracy,
        "test_loss": metrics.test_loss,
        "final_train_loss": last.train_loss,
        "final_val_loss": last.val_loss,
        "first_epoch_s": timing.get("first_epoch_seconds"),
        # the first step of each batch shape, inside the first epoch: tracing and compilation
        "compile_s": framework.get("compile_seconds"),
        "steady_epoch_s": timing.get("steady_epoch_seconds"),
        "mean_epoch_s": timing.get("mean_epoch_seconds"),
        "samples_per_second": timing.get("samples_per_second"),
        "params_total": params.get("total"),
        "params_trainable": params.get("trainable"),
        "n_train": metrics.n_train,
        "n_test": metrics.n_test,
        "trained_epochs": len(history),
        "predicted_classes": _predicted_classes(metrics.confusion_matrix),
        **_epoch_load_fields(history),
        **{key: framework.get(key) for key in FRAMEWORK_SETTINGS},
    }


def _predicted_classes(confusion: list[list[int]] | None) -> int | None:
    """How many classes the model predicted for at least one test image (columns of the
    confusion matrix: predictions); 1 is a model that did not learn."""
    if not confusion:
        return None
    return int((np.asarray(confusion).sum(axis=0) > 0).sum())


def _export_fields(record: PartialExport | None) -> dict[str, Any]:
    if record is None or not _given(record):
        return {"has_export": False}
    parity, onnx = record.parity or Parity(), record.onnx or OnnxInfo()
    return {
        "has_export": True,
        "parity_max_abs_diff": parity.max_abs_diff,
        "parity_native_accuracy": parity.native_accuracy,
        "parity_onnx_accuracy": parity.onnx_accuracy,
        "parity_argmax_agreement": parity.argmax_agreement,
        "parity_passed": record.passed if parity.passed is None else parity.passed,
        "parity_provider": parity.provider,
        "onnx_opset": onnx.opset,
        "onnx_nodes": onnx.nodes,
        "onnx_bytes": onnx.bytes,
    }


def _job_row(folder: JobFolder, job: PartialJob, metrics: PartialTraining | None,
             export: PartialExport | None) -> dict[str, Any]:
    config = job.config or {}
    trained = metrics or PartialTraining()
    # a sweep point's spec is named "<base>--<point>": rows are keyed by base spec and point
    spec_name = (config.get("base_spec") or config.get("spec")
                 or (trained.spec or {}).get("name") or folder.name)
    seed = config.get("seed")
    if seed is None and metrics:
        seed = trained.seed
    job_hash = config.get("spec_hash") or (trained.spec or {}).get("hash")
    reference = spec_reference(folder.path, spec_name, job_hash)
    overrides = config.get("overrides") or {}
    phases = job.phases or {}
    return {
        "job_id": job.job_id or folder.name,
        "status": job.status,
        "failed_step": job.failed_step,
        "error": job.error,
        "job_seconds": _job_seconds(job),
        # the epoch after which its training last resumed from a checkpoint (NaN: never)
        "resumed_after_epoch": job.resumed.after_epoch if job.resumed else None,
        "spec": spec_name,
        "spec_hash": job_hash,
        "backend": config.get("backend") or trained.backend,
        "seed": seed,
        "point": point_label(overrides),
        "overrides": json.dumps(overrides, sort_keys=True),
        "device": config.get("device") or trained.device,
        "compile": config.get("compile") or EAGER,  # the job's --compile mode
        "study": config.get("study") or study_of(reference),
        "published_test_accuracy": reference.get("published_test_accuracy"),
        "published_test_loss": reference.get("published_test_loss"),
        "published_ambiguity": reference.get("published_ambiguity") or "",
        "config": json.dumps(config, sort_keys=True),  # the job's settings: its exact command
        "started_utc": _first_start(job, metrics),
        "finished_utc": job.finished_utc,
        **_metric_fields(metrics),
        **_export_fields(export),
        **{f"phase_{name}_s": phases.get(name) for name in (*folders.JOB_PHASES, "total")},
        "job_dir": str(folder.path),
        "weights_file": str(folder.final_weights) if folder.final_weights.is_file() else "",
    }


def _job_seconds(job: PartialJob) -> float | None:
    """The job's time: its process's, plus the training time of the processes before it when
    it resumed from a checkpoint."""
    if job.seconds is None:
        return None
    return job.seconds + (job.resumed.earlier_seconds if job.resumed else 0.0)


def _first_start(job: PartialJob, metrics: PartialTraining | None) -> str | None:
    """When the job began: its process's start, or for a training resumed from a checkpoint
    the first process's training start (its record's own start is the last process's)."""
    started = job.started_utc
    first = metrics.started_utc if metrics is not None and job.resumed else None
    if started is None or first is None:
        return started or first
    return min(started, first, key=_utc)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _history_rows(row: dict[str, Any], metrics: PartialTraining | None) -> list[dict[str, Any]]:
    keys = {k: row[k] for k in ("job_id", "spec", "point", "backend", "seed", "study")}
    rows = []
    for epoch in metrics.history if metrics is not None else []:
        load = epoch.machine_load or {}
        row = {**keys, **epoch.as_read(), "noisy": is_noisy(load),
               "others_cores": load.get("others_cores")}
        row.pop("machine_load", None)
        rows.append(row)
    return rows


def latency_rows(records: list[dict[str, Any]], keys: dict[str, Any],
                 source: str) -> list[dict[str, Any]]:
    """latency.json records flattened: one row per record, stats as columns."""
    rows = []
    for record in records:
        stats = record.get("stats") or {}
        row = {column: None for column in LATENCY_COLUMNS}
        row.update({k: record.get(k) for k in ("runtime", "provider", "provider_used", "mixed",
                                               "mode", "batch_size", "status", "reason",
                                               "threads")})
        row.update({k: stats.get(k) for k in _STAT_KEYS})
        load = stats.get("machine_load") or {}
        row.update(noisy=is_noisy(load), others_cores=load.get("others_cores"))
        row.update(keys)
        row["backend"] = record.get("backend") or keys.get("backend")
        row["source"] = source
        rows.append(row)
    return rows


def _numeric(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


@dataclass
class JobRecords:
    """A job folder's records as the report reads them (None: missing or damaged), and what
    is damaged among them and its model files."""

    job: PartialJob | None
    metrics: PartialTraining | None
    export: PartialExport | None
    latency: PartialLatency | None
    damage: list[DamagedRecord]


def read_job_records(folder: JobFolder) -> JobRecords:
    damage: list[DamagedRecord] = []
    records = JobRecords(read_optional(folder.job, PartialJob, damage),
                         read_optional(folder.metrics, PartialTraining, damage),
                         read_optional(folder.export_record, PartialExport, damage),
                         read_optional(folder.latency, PartialLatency, damage), damage)
    damage += model_file_damage(folder, records.export)
    return records


def _damaged_row(row: dict[str, Any], damage: list[DamagedRecord]) -> None:
    """A job with a damaged record or model file shows as damaged (a failed job stays failed,
    its error says more), and a damaged weights file is not plotted."""
    if any(exc.name == folders.FINAL_WEIGHTS_FILE for exc in damage):
        row["weights_file"] = ""
    if row["status"] in ("ok", "unknown"):
        row.update(status="damaged", failed_step=None,
                   error="; ".join(str(exc) for exc in damage))


def _read_job(folder: JobFolder, data: dict[str, Any], notes: list[str]) -> None:
    records = read_job_records(folder)
    notes += [_unreadable(folder.path, exc) for exc in records.damage]
    metrics, latency = records.metrics, records.latency
    row = _job_row(folder, records.job or PartialJob(), metrics, records.export)
    if records.damage:
        _damaged_row(row, records.damage)
    data["jobs"].append(row)
    if latency is not None:
        data["latency_records"][row["job_id"]] = latency
    if row["compile"] == EAGER:  # a compiled job's epochs and latency: the variants section
        data["history"].extend(_history_rows(row, metrics))
        keys = {k: row[k] for k in ("job_id", "spec", "point", "backend", "seed")}
        entries = [entry.as_read() for entry in latency.records] if latency else []
        data["latency"].extend(latency_rows(entries, keys, "run"))
    if metrics is not None and metrics.confusion_matrix:
        data["confusion"].append((row["job_id"], np.asarray(metrics.confusion_matrix)))
    if metrics is not None and metrics.environment:
        data["environment"].setdefault(row["backend"], metrics.environment)
    if row["status"] == "ok" and metrics is None:
        notes.append(f"job {row['job_id']}: status ok but no {folders.METRICS_FILE}")


def _run_record(path: Path, model: type[R], notes: list[str]) -> R | None:
    """run.json or summary.json; None when missing, or damaged (noted)."""
    damage: list[DamagedRecord] = []
    record = read_optional(path, model, damage)
    notes += [_unreadable(path.parent, exc) for exc in damage]
    return record


def load_run(run_dir: Path | str, *, with_retimes: bool = True) -> RunData:
    """Every job folder of `run_dir` with its metrics, export record and latency records; busy
    timings replaced by the quiet re-timings of RUN_DIR/retime (harness.report.retimed)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a directory")
    notes: list[str] = []
    data: dict[str, Any] = {"jobs": [], "history": [], "latency": [], "confusion": [],
                            "environment": {}, "latency_records": {}}
    for folder in folders.finished_jobs(run_dir):
        _read_job(folder, data, notes)
    if not data["jobs"]:
        notes.append(f"{run_dir}: no finished jobs under {folders.JOBS_DIR}/")
    jobs = _numeric(pd.DataFrame(data["jobs"], columns=JOB_COLUMNS), JOB_NUMERIC)
    latency = _numeric(pd.DataFrame(data["latency"], columns=LATENCY_COLUMNS),
                       ["seed", "batch_size", "threads", "others_cores", *_STAT_KEYS])
    run_record = _run_record(run_dir / folders.RUN_FILE, AnyRecord, notes)
    run = RunData(
        run_dir=run_dir,
        run=run_record.as_read() if run_record is not None else None,
        summary=_run_record(run_dir / folders.SUMMARY_FILE, RunSummary, notes),
        jobs=jobs,
        history=pd.DataFrame(data["history"]),
        latency=latency,
        confusion=dict(data["confusion"]),
        environment=next(iter(data["environment"].values()), {}),
        environments=data["environment"],
        notes=notes,
        speed=load_speed(run_dir),
        latency_records=data["latency_records"],
    )
    notes += run.speed.problems
    retimes = run_dir / folders.RETIME_DIR
    if with_retimes and (retimes / folders.JOBS_DIR).is_dir():
        apply_retimes(run, load_run(retimes, with_retimes=False))
    else:
        no_retimes(run)
    return run
