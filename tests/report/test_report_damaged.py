"""`harness report` on a run with damaged records (hand-set numbers, no training): a damaged
record or model file becomes a note and its job shows as damaged, never a traceback."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")  # the report extras; absent in a minimal install
pytest.importorskip("matplotlib")

from harness.records import folders  # noqa: E402
from harness.records.io import read_json, write_json_atomic  # noqa: E402
from harness.report import write_report  # noqa: E402
from harness.report.load import load_run  # noqa: E402
from harness.spec import initial_weights, load_spec  # noqa: E402
from harness.spec.initializers import save_weights  # noqa: E402
from harness.training import FINAL_WEIGHTS_FILE  # noqa: E402

from .fakes import job_id, write_study_job  # noqa: E402

P50_MS = {"onnxruntime": {1: 0.1, 32: 0.5}, "native": {1: 0.2, 32: 1.0}}
ONNX = b"onnx"
DAMAGED = job_id("mlp2", "torch")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """Two finished jobs with every record and model file the report reads."""
    run = tmp_path / "run"
    for backend in ("keras", "torch"):
        write_study_job(run, "mlp2", backend, 0, 0.97, 1.0, P50_MS)
        job = folders.job_dir(run, job_id("mlp2", backend))
        save_weights(initial_weights(load_spec("mlp2"), 0), str(job / FINAL_WEIGHTS_FILE))
        (job / folders.ONNX_FILE).write_bytes(ONNX)
        write_json_atomic(job / folders.EXPORT_RECORD_FILE, {
            "schema_version": 1, "kind": "export", "passed": True,
            "parity": {"max_abs_diff": 1e-7, "passed": True},
            "onnx": {"bytes": len(ONNX), "sha256": hashlib.sha256(ONNX).hexdigest()}})
    write_json_atomic(run / folders.RUN_FILE, {"schema_version": 1, "kind": "run",
                                              "created_utc": "2024-01-01T00:00:00Z",
                                              "jobs": []})
    return run


def _edit(name: str, **changes: object) -> Callable[[Path], None]:
    def edit(job: Path) -> None:
        write_json_atomic(job / name, {**read_json(job / name), **changes})
    return edit


def _cut(name: str) -> Callable[[Path], None]:
    return lambda job: (job / name).write_bytes((job / name).read_bytes()[:100])


# damage done to the PyTorch job -> the file a note names
DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "latency.json records not a list": (_edit(folders.LATENCY_FILE, records=5),
                                        folders.LATENCY_FILE),
    "latency.json records not objects": (_edit(folders.LATENCY_FILE, records=[5]),
                                         folders.LATENCY_FILE),
    "metrics.json history not a list": (_edit(folders.METRICS_FILE, history=5),
                                        folders.METRICS_FILE),
    "final_weights.npz cut short": (_cut(FINAL_WEIGHTS_FILE), FINAL_WEIGHTS_FILE),
    "model.onnx garbled": (lambda job: (job / folders.ONNX_FILE).write_bytes(b"onnX"),
                           folders.ONNX_FILE),
    "job.json a list": (lambda job: (job / folders.JOB_FILE).write_text("[]"), folders.JOB_FILE),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_record_is_a_note_and_its_job_shows_as_damaged(damage: str,
                                                                  run: Path) -> None:
    do, name = DAMAGE[damage]
    do(folders.job_dir(run, DAMAGED))
    report = write_report(run)
    loaded = load_run(run)
    jobs = loaded.jobs.set_index("job_id")
    assert jobs.loc[DAMAGED, "status"] == "damaged"
    assert f"{name} damaged" in jobs.loc[DAMAGED, "error"]
    assert jobs.loc[job_id("mlp2", "keras"), "status"] == "ok"
    path = folders.job_dir(run, DAMAGED) / name
    assert [note for note in loaded.notes if note.startswith(f"{path}: unreadable (")]
    assert f"{path}: unreadable" in (report / "report.md").read_text()
    failed = pd.read_csv(report / "tables" / "failed.csv")
    assert list(failed["job_id"]) == [DAMAGED]


def test_an_undamaged_run_has_no_damaged_job(run: Path) -> None:
    loaded = load_run(run)
    assert set(loaded.jobs["status"]) == {"ok"}
    assert not [note for note in loaded.notes if "unreadable" in note]
    assert all(loaded.jobs["weights_file"] != "")

