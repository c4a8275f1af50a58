"""Resume trusts no record it has not checked: a finished job whose records are missing or
damaged runs again, named; a committed folder, its model files removed, stays finished; a run
folder whose fixed entries are wrong is refused in one line; a resumed run keeps its creation
time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.records import folders
from harness.records.io import read_json, write_json_atomic
from harness.run.executors.local import LocalExecutor
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig

from .stand_in import StandIn

CONFIG = RunConfig(specs=["mlp2", "mlp3"], backends=["torch"], batch_sizes=[1])
JOB = "mlp2--torch--seed0"


def _run(out: Path, stand_in: StandIn) -> list[str]:
    lines: list[str] = []
    run_matrix(CONFIG, out, show=lines.append, executor=LocalExecutor(command=stand_in.command))
    return lines


@pytest.fixture
def finished(tmp_path: Path) -> tuple[Path, StandIn]:
    """A run folder whose two jobs finished ok (stand-in jobs: whole records, no training)."""
    out, stand_in = tmp_path / "run", StandIn(tmp_path)
    assert "2 jobs: 0 already finished, 2 to run" in _run(out, stand_in)
    return out, stand_in


def _edit(name: str, **changes: object) -> Callable[[Path], None]:
    def edit(job: Path) -> None:
        write_json_atomic(job / name, {**read_json(job / name), **changes})
    return edit


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda job: (job / name).write_bytes(data)


def _cut(name: str) -> Callable[[Path], None]:
    return lambda job: (job / name).write_bytes((job / name).read_bytes()[:40])


# damage done to a finished job's folder -> the reason resume gives for running it again
DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "metrics.json removed": (lambda job: (job / folders.METRICS_FILE).unlink(),
                             "metrics.json missing"),
    "metrics.json cut short": (_cut(folders.METRICS_FILE), "metrics.json damaged"),
    "metrics.json of a later schema": (_edit(folders.METRICS_FILE, schema_version=2),
                                       "metrics.json damaged"),
    "metrics.json without test accuracy": (_edit(folders.METRICS_FILE, test_accuracy=None),
                                           "metrics.json damaged"),
    "latency.json records not a list": (_edit(folders.LATENCY_FILE, records=5),
                                        "latency.json damaged"),
    "latency.json of another kind": (_edit(folders.LATENCY_FILE, kind="train"),
                                     "latency.json damaged"),
    "model.onnx.json without the hash": (_edit(folders.EXPORT_RECORD_FILE, onnx={"bytes": 4}),
                                         "model.onnx.json damaged"),
    "model.onnx.json removed": (lambda job: (job / folders.EXPORT_RECORD_FILE).unlink(),
                                "model.onnx.json missing"),
    "model.onnx garbled": (_write(folders.ONNX_FILE, b"onnX"), "model.onnx damaged"),
    "final_weights.npz cut short": (_cut("final_weights.npz"), "final_weights.npz damaged"),
    "job.json cut short": (_write(folders.JOB_FILE, b"{"), "job.json damaged"),
    "job.json a list": (_write(folders.JOB_FILE, b"[]"), "job.json damaged"),
    "job.json binary": (_write(folders.JOB_FILE, bytes(range(256))), "job.json damaged"),
    "job.json removed": (lambda job: (job / folders.JOB_FILE).unlink(), "job.json missing"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_finished_job_with_a_damaged_record_runs_again_and_is_named(
        damage: str, finished: tuple[Path, StandIn]) -> None:
    out, stand_in = finished
    do, reason = DAMAGE[damage]
    do(folders.job_dir(out, JOB))
    lines = _run(out, stand_in)
    assert "2 jobs: 1 already finished, 1 to run" in lines
    assert f"1 finished job re-run: {reason} ({JOB})" in lines
    assert stand_in.calls().count(JOB) == 2
    assert read_json(out / folders.SUMMARY_FILE)["ok"] == 2
    assert "2 jobs: 2 already finished, 0 to run" in _run(out, stand_in)  # whole again


def test_a_committed_folder_without_its_model_files_stays_finished(
        finished: tuple[Path, StandIn]) -> None:
    out, stand_in = finished
    for job in folders.finished_job_dirs(out):  # as results/ keeps a run: records only
        for model_file in (folders.ONNX_FILE, "final_weights.npz", "model.pt"):
            (job / model_file).unlink()
    lines = _run(out, stand_in)
    assert "2 jobs: 2 already finished, 0 to run" in lines
    assert not [line for line in lines if "re-run" in line] and len(stand_in.calls()) == 2


def test_damaged_jobs_are_counted_together_by_their_damage(
        finished: tuple[Path, StandIn]) -> None:
    out, stand_in = finished
    for job in folders.finished_job_dirs(out):
        (job / folders.LATENCY_FILE).write_text("{")
    assert (f"2 finished jobs re-run: latency.json damaged ({JOB}, mlp3--torch--seed0)"
            in _run(out, stand_in))


@pytest.mark.parametrize("entry", [folders.JOBS_DIR, folders.SPECS_DIR, folders.RUN_FILE,
                                   folders.LOCK_FILE])
def test_a_run_folder_entry_of_the_wrong_kind_is_refused_before_anything_is_written(
        entry: str, tmp_path: Path) -> None:
    out, stand_in = tmp_path / "run", StandIn(tmp_path)
    out.mkdir()
    wrong = out / entry
    if entry.endswith((".json", ".lock")):
        wrong.mkdir()
    else:
        wrong.write_text("not a folder")
    with pytest.raises(UsageError, match=f"^{wrong}: a (file|folder): a run folder's `{entry}` "
                                         "must be a (folder|file); move it away"):
        _run(out, stand_in)
    assert sorted(p.name for p in out.iterdir()) == [entry] and stand_in.calls() == []


def test_a_resumed_run_keeps_its_creation_time(finished: tuple[Path, StandIn]) -> None:
    out, stand_in = finished
    first = read_json(out / folders.RUN_FILE)
    assert first["resumed_utc"] == []
    _run(out, stand_in)
    _run(out, stand_in)
    again = read_json(out / folders.RUN_FILE)
    assert again["created_utc"] == first["created_utc"]
    assert len(again["resumed_utc"]) == 2
    assert again["resumed_utc"] == sorted(again["resumed_utc"])
    assert again["resumed_utc"][0] >= first["created_utc"]



def test_retime_leaves_damaged_jobs_alone(finished: tuple[Path, StandIn]) -> None:
    """`harness retime` reads a run's jobs through the same checks: a damaged record is no
    traceback; the job is simply not one to time again (resume re-runs it)."""
    from harness.records.checks import ok_jobs
    from harness.run.retime import run_specs

    out, _ = finished
    (folders.job_dir(out, "mlp3--torch--seed0") / folders.METRICS_FILE).write_text("{")
    assert [folder.name for folder, _ in ok_jobs(out)] == [JOB]
    assert run_specs(out) == {"mlp2"}
