"""What a finished run came to, per job, for the lines `harness run` prints at its end: test
accuracy and loss, the epoch times (the steady one with its interval over epochs, when there
are enough of them), the steady time per training step with its interval over the epochs' step
windows (even from one epoch), and whether the ONNX export matched the framework; and, per
spec, each framework's step time over the reference's (an estimate from separate jobs).

Read from the jobs' records (harness.records.folders); a record that is missing or unreadable
leaves its cells empty (the report says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.backends import backend_label, reference_backend
from harness.measure.step_windows import (
    StepTime,
    StepTimeRatio,
    recorded_windows,
    steady_step_time,
    step_time_ratio,
)
from harness.records.checks import DamagedRecord, read_record
from harness.records.folders import JobFolder
from harness.records.models import (
    Epoch,
    PartialExport,
    PartialJob,
    PartialTraining,
    Record,
)

R = TypeVar("R", bound=Record)

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
    step: StepTime | None = None  # steady seconds per training step, over the step windows


@dataclass(frozen=True)
class StepRatio:
    """One framework's steady step time over the reference's, for one spec."""

    spec: str
    backend: str
    reference: str
    ratio: StepTimeRatio

    def describe(self) -> str:
        return (f"{self.spec}: {backend_label(self.backend)} ÷ {backend_label(self.reference)} "
                f"per training step {self.ratio.describe()}")


def _read(path: Path, model: type[R]) -> R | None:
    """The record as `model`; None when missing or damaged."""
    try:
        return read_record(path, model)
    except DamagedRecord:
        return None


def _epoch_seconds(history: list[Epoch]) -> list[float]:
    return [epoch.seconds for epoch in history if epoch.seconds is not None]


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


def _step_time(history: list[Epoch]) -> StepTime | None:
    """The steady step time over the epochs' windows (records before windows: None)."""
    epochs = recorded_windows(epoch.model_dump() for epoch in history)
    return steady_step_time(epochs) if epochs else None


def _parity_text(export: PartialExport | None) -> str:
    parity = export.parity if export is not None else None
    if parity is None:
        return ""
    worst = parity.max_abs_diff
    detail = f" (max |Δ| {worst:.1e})" if worst is not None else ""
    return ("passed" if parity.passed else "FAILED") + detail


def job_outcome(folder: JobFolder) -> JobOutcome:
    job = _read(folder.job, PartialJob) or PartialJob()
    config = job.config or {}
    outcome = {"job_id": folder.name, "spec": str(config.get("spec", "")),
               "backend": str(config.get("backend", "")), "seed": config.get("seed"),
               "status": job.status}
    metrics = _read(folder.metrics, PartialTraining)
    if metrics is None:
        return JobOutcome(**outcome)
    seconds = _epoch_seconds(metrics.history)
    steady, interval = _steady(seconds)
    return JobOutcome(
        **outcome, accuracy=metrics.test_accuracy, loss=metrics.test_loss,
        epochs=len(seconds), first_epoch_s=seconds[0] if seconds else None,
        steady_epoch_s=steady, steady_interval=interval, step=_step_time(metrics.history),
        parity=_parity_text(_read(folder.export_record, PartialExport)))


def run_outcomes(run_dir: Path, job_ids: list[str]) -> list[JobOutcome]:
    """The outcome of each of `job_ids` that has a job folder, in the given order."""
    found = [JobFolder.of(run_dir, job_id) for job_id in job_ids]
    return [job_outcome(folder) for folder in found if folder.path.is_dir()]


def step_ratios(outcomes: list[JobOutcome]) -> list[StepRatio]:
    """Per spec, each other framework's step time over the reference's (the first ok job of
    each backend: seed order as given)."""
    reference = reference_backend()
    steps: dict[str, dict[str, StepTime]] = {}
    for outcome in outcomes:
        if outcome.status == "ok" and outcome.step is not None:
            steps.setdefault(outcome.spec, {}).setdefault(outcome.backend, outcome.step)
    return [StepRatio(spec, backend, reference, step_time_ratio(step, by_backend[reference]))
            for spec, by_backend in steps.items() if reference in by_backend
            for backend, step in by_backend.items() if backend != reference]
