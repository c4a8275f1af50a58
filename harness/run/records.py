"""A job folder's records (harness.records.folders), checked before anything trusts them.

Resume (harness.run.resume) counts an ok job as finished only when every record it wrote reads
back whole, and runs it again otherwise; the report (harness.report.load) shows such a job as
damaged. Each model holds the part of a record its readers rely on: the containers they walk,
and for a finished job the fields it must have; any other field is free.

Model files are checked when present only: a committed run folder keeps its records and drops
its model files (model.onnx, *.npz), which is no damage. A model.onnx that is there must match
the sha256 its export record gives.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.records import folders
from harness.records.io import RESULT_SCHEMA_VERSION
from harness.training import FINAL_WEIGHTS_FILE

JsonObject = dict[str, Any]


class _Shape(BaseModel):
    # strict: JSON's own types, no "1.5" for 1.5; extra: fields no reader relies on are free
    model_config = ConfigDict(strict=True, extra="allow")


class _Versioned(_Shape):
    schema_version: int

    @field_validator("schema_version")
    @classmethod
    def _known(cls, value: int) -> int:
        if value != RESULT_SCHEMA_VERSION:
            raise ValueError(f"schema_version {value}, expected {RESULT_SCHEMA_VERSION}")
        return value


class JobShape(_Shape):
    """job.json as the report and the summary read it."""

    status: str = "unknown"
    config: JsonObject | None = None
    resumed: JsonObject | None = None
    phases: dict[str, float | None] | None = None
    seconds: float | None = None


class FinishedJob(JobShape, _Versioned):
    """job.json as resume reads it: versioned, with the config its resume key is in."""

    kind: Literal["job"]
    status: str
    config: JsonObject


class Epoch(_Shape):
    train_loss: float | None = None
    val_loss: float | None = None
    seconds: float | None = None
    machine_load: JsonObject | None = None


class MetricsShape(_Shape):
    """metrics.json (harness.training) as the report reads it."""

    history: list[Epoch] = []
    test_accuracy: float | None = None
    test_loss: float | None = None
    timing: JsonObject | None = None
    params: JsonObject | None = None
    spec: JsonObject | None = None
    environment: JsonObject | None = None
    confusion_matrix: list[list[int]] | None = None


class FinishedMetrics(MetricsShape, _Versioned):
    """metrics.json of a finished training: its epochs and test accuracy."""

    kind: Literal["train"]
    history: list[Epoch]
    test_accuracy: float


class OnnxFile(_Shape):
    bytes: int
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


class ExportShape(_Shape):
    """model.onnx.json (harness.export.driver) as the report reads it."""

    parity: JsonObject | None = None
    onnx: JsonObject | None = None


class FinishedExport(ExportShape, _Versioned):
    """model.onnx.json of a finished export: the ONNX file's size and hash, the parity verdict."""

    kind: Literal["export"]
    onnx: OnnxFile  # required here: its hash checks model.onnx
    passed: bool


class LatencyStats(_Shape):
    machine_load: JsonObject | None = None


class LatencyEntry(_Shape):
    stats: LatencyStats | None = None


class LatencyShape(_Shape):
    """latency.json (harness.latency.bench) as the report reads it."""

    records: list[LatencyEntry] = []
    variants: list[JsonObject] | None = None  # with --ort-variants (harness.latency.variants)
    variant_records: list[LatencyEntry] | None = None


class FinishedLatency(LatencyShape, _Versioned):
    """latency.json of a finished latency step."""

    kind: Literal["latency"]
    records: list[LatencyEntry]


class AnyRecord(_Shape):
    """Any JSON object: a record with no shape of its own here (run.json, summary.json)."""


# What the report reads of each record, present or not; what a finished ok job must hold
# beside its job.json (FinishedJob): every step's record.
SHAPES: dict[str, type[_Shape]] = {
    folders.JOB_FILE: JobShape, folders.METRICS_FILE: MetricsShape,
    folders.EXPORT_RECORD_FILE: ExportShape, folders.LATENCY_FILE: LatencyShape}
FINISHED_STEPS: dict[str, type[_Shape]] = {
    folders.METRICS_FILE: FinishedMetrics, folders.EXPORT_RECORD_FILE: FinishedExport,
    folders.LATENCY_FILE: FinishedLatency}


class DamagedRecord(Exception):
    """A record that is missing or does not read back whole, or a model file present that does
    not. `reason` ("metrics.json damaged") is the same for every job with the same damage."""

    def __init__(self, name: str, problem: str, detail: str = "") -> None:
        self.name, self.reason, self.detail = name, f"{name} {problem}", detail
        super().__init__(f"{self.reason} ({detail})" if detail else self.reason)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "the record"
    return f"{where}: {error['msg']}"


def read_record(path: Path, shape: type[_Shape]) -> dict[str, Any]:
    """The JSON record at `path`, checked against `shape`; DamagedRecord when it is missing,
    is no JSON object, or does not fit."""
    if not path.is_file():
        raise DamagedRecord(path.name, "missing")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        shape.model_validate(data)
    except ValidationError as exc:
        raise DamagedRecord(path.name, "damaged", _first_error(exc)) from None
    except (OSError, ValueError) as exc:  # ValueError: no JSON, or no UTF-8 text
        raise DamagedRecord(path.name, "damaged", f"{type(exc).__name__}: {exc}") from None
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_file_damage(job_dir: Path, export: dict[str, Any] | None) -> list[DamagedRecord]:
    """The model files present in `job_dir` that do not read back: model.onnx against the
    sha256 in `export` (its model.onnx.json, where it gives one), final_weights.npz as an
    archive whose members' checksums hold. A file that is not there is no damage."""
    found = []
    onnx, expected = job_dir / folders.ONNX_FILE, ((export or {}).get("onnx") or {}).get("sha256")
    if expected and onnx.is_file() and _sha256(onnx) != expected:
        found.append(DamagedRecord(onnx.name, "damaged",
                                   f"its sha256 is not the one {folders.EXPORT_RECORD_FILE} gives"))
    weights = job_dir / FINAL_WEIGHTS_FILE
    if weights.is_file():
        try:
            with zipfile.ZipFile(weights) as archive:
                bad = archive.testzip()
            if bad is not None:
                found.append(DamagedRecord(weights.name, "damaged", f"{bad}: bad checksum"))
        except (OSError, zipfile.BadZipFile) as exc:
            found.append(DamagedRecord(weights.name, "damaged", f"{type(exc).__name__}: {exc}"))
    return found


def finished_job_damage(job_dir: Path) -> list[DamagedRecord]:
    """What keeps an ok job's folder (its job.json read already) from counting as finished:
    each other record missing or damaged, each model file present that does not read back."""
    found, records = [], {}
    for name, shape in FINISHED_STEPS.items():
        try:
            records[name] = read_record(job_dir / name, shape)
        except DamagedRecord as exc:
            found.append(exc)
    return found + model_file_damage(job_dir, records.get(folders.EXPORT_RECORD_FILE))


def ok_jobs(run_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, job.json) of each ok job of a run whose records all read back whole: what
    `harness retime` may time again (a damaged job is left to resume, which re-runs it)."""
    found = []
    for folder in folders.finished_job_dirs(run_dir):
        try:
            job = read_record(folder / folders.JOB_FILE, FinishedJob)
        except DamagedRecord:
            continue
        if job["status"] == "ok" and not finished_job_damage(folder):
            found.append((folder, job))
    return found
