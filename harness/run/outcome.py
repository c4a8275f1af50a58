"""What a finished run came to, per job, for the lines `harness run` prints at its end: test
accuracy and loss, the epoch times (the steady one with its interval over epochs, when there
are enough of them), and whether the ONNX export matched the framework.

Read from the jobs' records (harness.records.folders); a record that is missing or unreadable
leaves its cells empty (the report says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.records import folders
from harness.run.records import SHAPES, DamagedRecord, read_record

# A steady interval needs a few epochs after the first; with fewer the median stands alone.
MIN_STEADY_EPOCHS_FOR_INTERVAL = 3


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    spec: str
    backend: str
    seed: int | None
    status: str
    accuracy: float | None = None
    loss: float | None = None
    epochs: int = 0
    first_epoch_s: float | None = None
    steady_epoch_s: float | None = None
    steady_interval: tuple[float, float] | None = None  # 95 % over the steady epochs
    parity: str = ""  # "passed" / "FAILED" with the largest difference; "" when not exported


def _read(path: Path) -> dict[str, Any]:
    """The record checked against its shape (harness.run.records); {} when missing or damaged."""
    try:
        return read_record(path, SHAPES[path.name])
    except DamagedRecord:
        return {}


def _epoch_seconds(history: Any) -> list[float]:
    if not isinstance(history, list):
        return []
    return [float(e["seconds"]) for e in history
            if isinstance(e, dict) and isinstance(e.get("seconds"), (int, float))]


def _steady(seconds: list[float]) -> tuple[float | None, tuple[float, float] | None]:
    """The median of the epochs after the first, and its interval when there are enough."""
    from harness.measure.intervals import median_interval

    steady = seconds[1:]
    if not steady:
        return None, None
    estimate = median_interval(steady)
    if len(steady) < MIN_STEADY_EPOCHS_FOR_INTERVAL:
        return estimate.estimate, None
    return estimate.estimate, (estimate.ci_low, estimate.ci_high)


def _parity_text(export: dict[str, Any]) -> str:
    parity = export.get("parity")
    if not isinstance(parity, dict):
        return ""
    worst = parity.get("max_abs_diff")
    detail = f" (max |Δ| {worst:.1e})" if isinstance(worst, (int, float)) else ""
    return ("passed" if parity.get("passed") else "FAILED") + detail


def job_outcome(job_dir: Path) -> JobOutcome:
    job = _read(job_dir / folders.JOB_FILE)
    config = job.get("config") if isinstance(job.get("config"), dict) else {}
    outcome = {"job_id": job_dir.name, "spec": str(config.get("spec", "")),
               "backend": str(config.get("backend", "")), "seed": config.get("seed"),
               "status": str(job.get("status", "unknown"))}
    metrics = _read(job_dir / folders.METRICS_FILE)
    if not metrics:
        return JobOutcome(**outcome)
    seconds = _epoch_seconds(metrics.get("history"))
    steady, interval = _steady(seconds)
    return JobOutcome(
        **outcome, accuracy=metrics.get("test_accuracy"), loss=metrics.get("test_loss"),
        epochs=len(seconds), first_epoch_s=seconds[0] if seconds else None,
        steady_epoch_s=steady, steady_interval=interval,
        parity=_parity_text(_read(job_dir / folders.EXPORT_RECORD_FILE)))


def run_outcomes(run_dir: Path, job_ids: list[str]) -> list[JobOutcome]:
    """The outcome of each of `job_ids` that has a job folder, in the given order."""
    folders = [folders.job_dir(run_dir, job_id) for job_id in job_ids]
    return [job_outcome(folder) for folder in folders if folder.is_dir()]
