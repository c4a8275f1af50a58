"""The run's records as typed models: the records a run wrote before these models existed
(results/mnist-studies, committed) still read; a record of the wrong type does not, and the
report names its file and field; the summary counts how the jobs ended."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from harness.records import folders
from harness.records.checks import DamagedRecord, finished_job_damage, ok_jobs, read_record
from harness.records.folders import JobFolder
from harness.records.io import read_json, write_json_atomic
from harness.records.models import (
    ExportRecord,
    JobRecord,
    LatencyRecord,
    PartialJob,
    PartialTraining,
    Record,
    RunSummary,
    TrainingRecord,
    job_record,
)

COMMITTED = Path(__file__).resolve().parents[2] / "results" / "mnist-studies"
# a few real job folders: two frameworks, a sweep-free CNN and MLP, and a re-timing
SAMPLES = ["cnn2_k3_keras_example--keras--seed0", "cnn2_k3_keras_example--torch--seed0",
           "cnn3_k3--keras--seed0"]


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy of a few of the committed run's job folders, its run.json and summary.json."""
    if not (COMMITTED / folders.JOBS_DIR).is_dir():
        pytest.skip("results/mnist-studies is not in this checkout")
    run = tmp_path / "run"
    for name in SAMPLES:
        shutil.copytree(folders.job_dir(COMMITTED, name), folders.job_dir(run, name))
    for name in (folders.RUN_FILE, folders.SUMMARY_FILE):
        shutil.copyfile(COMMITTED / name, run / name)
    return run


def test_records_written_before_the_models_still_read_as_finished(old_run: Path) -> None:
    for folder in folders.finished_jobs(old_run):
        job = read_record(folder.job, JobRecord)
        assert (job.job_id, job.status) == (folder.name, "ok")
        assert job.config["spec"] == "cnn2_k3_keras_example" or "cnn3" in job.config["spec"]
        assert read_record(folder.metrics, TrainingRecord).test_accuracy > 0.9
        assert read_record(folder.export_record, ExportRecord).passed
        assert read_record(folder.latency, LatencyRecord).records
        assert finished_job_damage(folder) == []
    assert [folder.name for folder, _ in ok_jobs(old_run)] == SAMPLES
    summary = read_record(old_run / folders.SUMMARY_FILE, RunSummary)
    assert summary.ok == summary.jobs and summary.failed == []


def test_a_model_keeps_the_fields_it_does_not_declare(old_run: Path) -> None:
    """Extra fields are free: read and written back, a record loses none of them."""
    path = JobFolder.of(old_run, SAMPLES[0]).metrics
    assert read_record(path, TrainingRecord).as_read() == read_json(path)


def test_the_report_names_the_file_and_field_of_a_damaged_record(old_run: Path) -> None:
    from harness.report.load import load_run

    folder = JobFolder.of(old_run, SAMPLES[1])
    metrics = read_json(folder.metrics)
    metrics["history"][0]["seconds"] = "12.5"  # a number as text: not what was written
    write_json_atomic(folder.metrics, metrics)
    run = load_run(old_run)
    assert [note for note in run.notes if str(folder.metrics) in note] == [
        f"{folder.metrics}: unreadable (history.0.seconds: Input should be a valid number)"]
    damaged = run.jobs.set_index("job_id").loc[SAMPLES[1]]
    assert damaged["status"] == "damaged" and "metrics.json damaged" in damaged["error"]
    assert set(run.jobs["status"]) == {"ok", "damaged"}
    assert run.summary is not None and run.summary.ok == 118
    assert sorted(run.latency_records) == sorted(SAMPLES)  # read once, for the variants


def _job(**fields: Any) -> dict[str, Any]:
    return {**job_record("a--torch--seed0", {"spec": "a"}, None).record(), **fields}


def _metrics(**fields: Any) -> dict[str, Any]:
    return {"schema_version": 1, "kind": "train", "history": [{"seconds": 1.5}],
            "test_accuracy": 0.9, **fields}


def _export(**fields: Any) -> dict[str, Any]:
    return {"schema_version": 1, "kind": "export", "passed": True,
            "onnx": {"bytes": 4, "sha256": "0" * 64}, **fields}


def _latency(**fields: Any) -> dict[str, Any]:
    return {"schema_version": 1, "kind": "latency", "records": [{"stats": {}}], **fields}


def _summary(**fields: Any) -> dict[str, Any]:
    return {**RunSummary.of({}, "2026-01-01T00:00:00Z").record(), **fields}


# each check, by a record that breaks it alone: (model, the record, the field named)
WRONG = {
    "job status a number": (JobRecord, _job(status=5), "status"),
    "job config text": (JobRecord, _job(config="spec=a"), "config"),
    "job without its id": (JobRecord, {k: v for k, v in _job().items() if k != "job_id"},
                           "job_id"),
    "job seconds as text": (PartialJob, _job(seconds="3.5"), "seconds"),
    "job of another kind": (JobRecord, _job(kind="train"), "kind"),
    "job of a later schema": (JobRecord, _job(schema_version=2), "schema_version"),
    "metrics accuracy as text": (TrainingRecord, _metrics(test_accuracy="0.9"), "test_accuracy"),
    "metrics epoch seconds as text": (PartialTraining, _metrics(history=[{"seconds": "1"}]),
                                      "history.0.seconds"),
    "metrics without accuracy": (TrainingRecord, _metrics(test_accuracy=None), "test_accuracy"),
    "export hash not hex": (ExportRecord, _export(onnx={"bytes": 4, "sha256": "xyz"}),
                            "onnx.sha256"),
    "export verdict as text": (ExportRecord, _export(passed="yes"), "passed"),
    "latency records not a list": (LatencyRecord, _latency(records=5), "records"),
    "summary count as text": (RunSummary, _summary(ok="1"), "ok"),
    "summary failure without its job": (RunSummary, _summary(failed=[{"error": "x"}]),
                                        "failed.0.job_id"),
}


@pytest.mark.parametrize("case", WRONG, ids=list(WRONG))
def test_a_field_of_the_wrong_type_fails_and_is_named(case: str, tmp_path: Path) -> None:
    model, record, field = WRONG[case]
    with pytest.raises(ValidationError):
        model.model_validate(record)
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    with pytest.raises(DamagedRecord, match=f"record.json damaged \\({field}: "):
        read_record(path, model)


@pytest.mark.parametrize("model, record", [
    (JobRecord, _job()), (TrainingRecord, _metrics()), (ExportRecord, _export()),
    (LatencyRecord, _latency()), (RunSummary, _summary())])
def test_the_same_records_with_their_fields_right_read(model: type[Record],
                                                       record: dict[str, Any]) -> None:
    """The positive control of the cases above: each record as written reads."""
    assert model.model_validate(record).as_read() == record


def test_the_summary_counts_each_way_a_job_ended() -> None:
    def ended(status: str, error: str | None = None, step: str | None = None) -> JobRecord:
        return job_record("j", {}, None, status=status, error=error, failed_step=step)

    summary = RunSummary.of({
        "a": ended("ok"), "b": ended("ok"), "c": ended("failed", "boom", "export"),
        "d": ended(folders.UNAVAILABLE, "no C++ compiler", "train"),
        "e": PartialJob(status="missing")}, "2026-01-01T00:00:00Z")
    assert (summary.jobs, summary.ok) == (5, 2)
    assert [(f.job_id, f.failed_step, f.error) for f in summary.failed] == [
        ("c", "export", "boom"), ("e", None, None)]
    assert [(u.job_id, u.reason) for u in summary.unavailable] == [("d", "no C++ compiler")]
    record = summary.record()
    assert (record["kind"], record["schema_version"]) == ("summary", 1)
    assert RunSummary.model_validate(json.loads(json.dumps(record))) == summary


def test_a_job_record_reads_back_as_written(tmp_path: Path) -> None:
    """job_record builds every job.json (the job process's, and a failed one's): what it
    writes, JobRecord reads back the same."""
    record = job_record("a--torch--seed0", {"spec": "a", "seed": 0}, {"executor": "local"},
                        status="failed", error="boom", failed_step="train",
                        started_utc="2026-01-01T00:00:00Z", seconds=1.0,
                        phases={"start": 0.5, "total": 1.5},
                        resumed={"after_epoch": 2, "times": 1, "earlier_seconds": 3.0})
    write_json_atomic(tmp_path / folders.JOB_FILE, record.record())
    assert read_record(tmp_path / folders.JOB_FILE, JobRecord) == record
    assert record.resumed is not None and record.resumed.after_epoch == 2
