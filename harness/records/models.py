"""A run's records (harness.records.folders) as typed models: job.json, metrics.json,
model.onnx.json, latency.json and summary.json, each with its schema version and kind.

Each model is strict on the fields its readers rely on (JSON's own types: no "1.5" for 1.5)
and free on every other field, so a record an older harness wrote, with fields since dropped
or not yet added, still reads. Each record comes in two strengths:

- `Partial*`: how the report reads a record of any run folder (a failed job's, an older
  harness's): every field may be missing, a field that is there must have its type;
- the record itself (JobRecord, TrainingRecord, ExportRecord, LatencyRecord): what a finished
  job's record must hold for resume (harness.run.resume) to count it finished.

job.json and summary.json are built here too (job_record, RunSummary.of), so each is made in
one place whichever process writes it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.records.folders import UNAVAILABLE
from harness.records.io import RESULT_SCHEMA_VERSION

JsonObject = dict[str, Any]


class Record(BaseModel):
    # strict: JSON's own types; extra: fields no reader relies on are free
    model_config = ConfigDict(strict=True, extra="allow")

    def record(self) -> JsonObject:
        """The record as it is written: every field, as JSON."""
        return self.model_dump(mode="json")

    def as_read(self) -> JsonObject:
        """The fields the file gave, as read (checked): for readers that walk it as JSON."""
        return self.model_dump(exclude_unset=True)


class Versioned(Record):
    schema_version: int = RESULT_SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known(cls, value: int) -> int:
        if value != RESULT_SCHEMA_VERSION:
            raise ValueError(f"schema_version {value}, expected {RESULT_SCHEMA_VERSION}")
        return value


# job.json ------------------------------------------------------------------------------------

class Resumed(Record):
    """Where a job's training resumed from its checkpoint (harness.run.job_process)."""

    after_epoch: int
    times: int
    earlier_seconds: float  # the training seconds of the processes before this one


class PartialJob(Versioned):
    """job.json as the report reads it."""

    kind: Literal["job"] = "job"
    job_id: str | None = None
    status: str = "unknown"
    error: str | None = None
    failed_step: str | None = None
    started_utc: str | None = None
    finished_utc: str | None = None
    config: JsonObject | None = None  # harness.run.job.Job.record()
    placement: JsonObject | None = None  # harness.run.job.Placement.record()
    memory: JsonObject | None = None
    seconds: float | None = None
    phases: dict[str, float | None] | None = None  # harness.records.folders.JOB_PHASES
    resumed: Resumed | None = None


class JobRecord(PartialJob):
    """job.json as written (job_record) and as resume and the summary read it."""

    schema_version: int
    kind: Literal["job"]
    job_id: str
    status: str
    config: JsonObject


def job_record(job_id: str, config: JsonObject, placement: JsonObject | None, *,
               status: str = "ok", error: str | None = None, failed_step: str | None = None,
               started_utc: str | None = None, **more: Any) -> JobRecord:
    """A job's job.json: `config` is its Job.record(), `placement` its Placement.record();
    `more`: the fields of a job that ran (finished_utc, seconds, phases, resumed, memory)."""
    return JobRecord.model_validate({
        "schema_version": RESULT_SCHEMA_VERSION, "kind": "job", "job_id": job_id,
        "status": status, "error": error, "failed_step": failed_step,
        "started_utc": started_utc, "config": config, "placement": placement, **more})


# metrics.json --------------------------------------------------------------------------------

class Epoch(Record):
    train_loss: float | None = None
    val_loss: float | None = None
    seconds: float | None = None
    machine_load: JsonObject | None = None  # harness.measure.machine_load
    # the epoch's step windows (harness.measure.step_windows); absent in records before them
    window_seconds: list[float] | None = None
    window_steps: list[int] | None = None
    window_first_call: list[bool] | None = None


class PartialTraining(Versioned):
    """metrics.json (harness.training) as the report reads it."""

    kind: Literal["train"] = "train"
    history: list[Epoch] = []
    test_accuracy: float | None = None
    test_loss: float | None = None
    timing: JsonObject | None = None
    params: JsonObject | None = None
    spec: JsonObject | None = None
    environment: JsonObject | None = None
    confusion_matrix: list[list[int]] | None = None
    checkpoint: JsonObject | None = None  # harness.training.checkpoint
    backend: str | None = None
    device: str | None = None
    seed: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    started_utc: str | None = None
    model_file: str | None = None  # the framework's model file, in the job folder
    initial_weights_file: str | None = None


class TrainingRecord(PartialTraining):
    """metrics.json of a finished training: its epochs and test accuracy."""

    schema_version: int
    kind: Literal["train"]
    history: list[Epoch]
    test_accuracy: float


# model.onnx.json -----------------------------------------------------------------------------

class Parity(Record):
    passed: bool | None = None
    max_abs_diff: float | None = None
    native_accuracy: float | None = None
    onnx_accuracy: float | None = None
    argmax_agreement: float | None = None
    provider: str | None = None


class OnnxInfo(Record):
    bytes: int | None = None
    sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    opset: int | None = None
    nodes: int | None = None


class OnnxFile(OnnxInfo):
    bytes: int
    sha256: str = Field(pattern="^[0-9a-f]{64}$")  # checks model.onnx


class PartialExport(Versioned):
    """model.onnx.json (harness.export.driver) as the report reads it."""

    kind: Literal["export"] = "export"
    parity: Parity | None = None
    onnx: OnnxInfo | None = None
    passed: bool | None = None


class ExportRecord(PartialExport):
    """model.onnx.json of a finished export: the ONNX file's size and hash, the verdict."""

    schema_version: int
    kind: Literal["export"]
    onnx: OnnxFile
    passed: bool


# latency.json --------------------------------------------------------------------------------

class LatencyStats(Record):
    machine_load: JsonObject | None = None


class LatencyEntry(Record):
    """One timed configuration: runtime, provider, mode, batch size, its stats."""

    stats: LatencyStats | None = None


class PartialLatency(Versioned):
    """latency.json (harness.latency.bench) as the report reads it."""

    kind: Literal["latency"] = "latency"
    records: list[LatencyEntry] = []
    variants: list[JsonObject] | None = None  # with --ort-variants (harness.latency.variants)
    variant_records: list[LatencyEntry] | None = None


class LatencyRecord(PartialLatency):
    """latency.json of a finished latency step."""

    schema_version: int
    kind: Literal["latency"]
    records: list[LatencyEntry]


# summary.json --------------------------------------------------------------------------------

class FailedJob(Record):
    job_id: str
    failed_step: str | None = None
    error: str | None = None


class UnavailableJob(Record):
    job_id: str
    reason: str | None = None  # why this platform cannot run its compile mode


class RunSummary(Versioned):
    """summary.json: how a run's jobs ended, written when `harness run` ends."""

    kind: Literal["summary"] = "summary"
    finished_utc: str
    jobs: int
    ok: int
    failed: list[FailedJob]  # also the jobs missing or damaged
    unavailable: list[UnavailableJob]

    @classmethod
    def of(cls, records: dict[str, PartialJob], finished_utc: str) -> RunSummary:
        """The summary of the jobs whose job.json `records` holds, by job id (a job that
        recorded nothing: a PartialJob of status "missing")."""
        failed = [FailedJob(job_id=job_id, failed_step=r.failed_step, error=r.error)
                  for job_id, r in records.items() if r.status not in ("ok", UNAVAILABLE)]
        # a compile mode this platform cannot run: recorded with its reason, not a failure
        unavailable = [UnavailableJob(job_id=job_id, reason=r.error)
                       for job_id, r in records.items() if r.status == UNAVAILABLE]
        return cls(finished_utc=finished_utc, jobs=len(records),
                   ok=len(records) - len(failed) - len(unavailable), failed=failed,
                   unavailable=unavailable)


class AnyRecord(Record):
    """Any JSON object: a record with no model of its own here (run.json)."""
