"""A job folder's records (harness.records.models), checked before anything trusts them.

Resume (harness.run.resume) counts an ok job as finished only when every record it wrote reads
back whole, and runs it again otherwise; the report (harness.report.load) shows such a job as
damaged, naming the file and the field.

Model files are checked when present only: a committed run folder keeps its records and drops
its model files (model.onnx, *.npz), which is no damage. A model.onnx that is there must match
the sha256 its export record gives.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from harness.records import folders
from harness.records.folders import JobFolder
from harness.records.models import (
    ExportRecord,
    JobRecord,
    LatencyRecord,
    PartialExport,
    PartialJob,
    PartialLatency,
    PartialTraining,
    Record,
    TrainingRecord,
)

R = TypeVar("R", bound=Record)

# What the report reads of each record of a job folder, present or not; what a finished ok
# job must hold beside its job.json (JobRecord): every step's record.
PARTIAL: dict[str, type[Record]] = {
    folders.JOB_FILE: PartialJob, folders.METRICS_FILE: PartialTraining,
    folders.EXPORT_RECORD_FILE: PartialExport, folders.LATENCY_FILE: PartialLatency}
FINISHED_STEPS: dict[str, type[Record]] = {
    folders.METRICS_FILE: TrainingRecord, folders.EXPORT_RECORD_FILE: ExportRecord,
    folders.LATENCY_FILE: LatencyRecord}


class DamagedRecord(Exception):
    """A record that is missing or does not read back whole, or a model file present that does
    not. `reason` ("metrics.json damaged") is the same for every job with the same damage;
    `detail` names the field ("history.0.seconds: Input should be a valid number")."""

    def __init__(self, name: str, problem: str, detail: str = "") -> None:
        self.name, self.reason, self.detail = name, f"{name} {problem}", detail
        super().__init__(f"{self.reason} ({detail})" if detail else self.reason)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "the record"
    return f"{where}: {error['msg']}"


def read_record(path: Path, model: type[R]) -> R:
    """The JSON record at `path` as `model`; DamagedRecord when it is missing, is no JSON
    object, or does not fit."""
    if not path.is_file():
        raise DamagedRecord(path.name, "missing")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return model.model_validate(data)
    except ValidationError as exc:
        raise DamagedRecord(path.name, "damaged", _first_error(exc)) from None
    except (OSError, ValueError) as exc:  # ValueError: no JSON, or no UTF-8 text
        raise DamagedRecord(path.name, "damaged", f"{type(exc).__name__}: {exc}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_file_damage(folder: JobFolder, export: PartialExport | None) -> list[DamagedRecord]:
    """The model files present in `folder` that do not read back: model.onnx against the
    sha256 in `export` (its model.onnx.json, where it gives one), final_weights.npz as an
    archive whose members' checksums hold. A file that is not there is no damage."""
    found = []
    expected = export.onnx.sha256 if export is not None and export.onnx is not None else None
    if expected and folder.onnx.is_file() and _sha256(folder.onnx) != expected:
        found.append(DamagedRecord(folder.onnx.name, "damaged",
                                   f"its sha256 is not the one {folders.EXPORT_RECORD_FILE} gives"))
    weights = folder.final_weights
    if weights.is_file():
        try:
            with zipfile.ZipFile(weights) as archive:
                bad = archive.testzip()
            if bad is not None:
                found.append(DamagedRecord(weights.name, "damaged", f"{bad}: bad checksum"))
        except (OSError, zipfile.BadZipFile) as exc:
            found.append(DamagedRecord(weights.name, "damaged", f"{type(exc).__name__}: {exc}"))
    return found


def finished_job_damage(folder: JobFolder) -> list[DamagedRecord]:
    """What keeps an ok job's folder (its job.json read already) from counting as finished:
    each other record missing or damaged, each model file present that does not read back."""
    found: list[DamagedRecord] = []
    export = None
    for name, model in FINISHED_STEPS.items():
        try:
            record = read_record(folder.file(name), model)
        except DamagedRecord as exc:
            found.append(exc)
            continue
        if isinstance(record, ExportRecord):
            export = record
    return found + model_file_damage(folder, export)


def ok_jobs(run_dir: Path) -> list[tuple[JobFolder, JobRecord]]:
    """(folder, job.json) of each ok job of a run whose records all read back whole: what
    `harness retime` may time again (a damaged job is left to resume, which re-runs it)."""
    found = []
    for folder in folders.finished_jobs(run_dir):
        try:
            job = read_record(folder.job, JobRecord)
        except DamagedRecord:
            continue
        if job.status == "ok" and not finished_job_damage(folder):
            found.append((folder, job))
    return found
