"""`harness compare A B --fail-on-regression` as a CI gate: it fails a candidate B whose jobs
failed or are missing, or that compares nothing, not only one whose numbers got worse; and a
folder that is no run is an error, not "0 regressions"."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pandas")  # the report extras; absent in a minimal install

from harness.cli import main  # noqa: E402
from harness.records import folders  # noqa: E402
from harness.records.io import write_json_atomic  # noqa: E402

from .fakes import job_id, job_record, write_metrics_only_job  # noqa: E402

BACKENDS = ("torch", "keras")
GATE = "--fail-on-regression"


def healthy_run(run: Path) -> Path:
    for backend in BACKENDS:
        write_metrics_only_job(run, "mlp2", backend, 0, 0.95, 1.0, 0.1)
    return run


def failed_job(run: Path, backend: str, step: str | None = "train") -> None:
    """A job that failed (at `step`; None: its process recorded none), with no metrics."""
    write_json_atomic(folders.job_dir(run, job_id("mlp2", backend)) / folders.JOB_FILE,
                      job_record("mlp2", backend, 0, status="failed", failed_step=step,
                                 error="OSError: disk full"))


def compare(a: Path, b: Path, *options: str) -> int:
    try:
        return main(["compare", str(a), str(b), *options])
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code)


def test_a_candidate_whose_every_job_failed_fails_the_gate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = healthy_run(tmp_path / "a"), tmp_path / "b"
    failed_job(b, "torch")
    failed_job(b, "keras", step=None)
    assert compare(a, b, GATE) == 1
    out = capsys.readouterr().out
    assert f"B: {job_id('mlp2', 'torch')} failed at train: OSError: disk full" in out
    assert f"B: {job_id('mlp2', 'keras')} failed: OSError: disk full" in out  # never "at None"
    assert "nothing compared" in out
    assert compare(a, b) == 0  # without the gate: said, not failed


def test_a_job_finished_in_a_and_missing_in_b_fails_the_gate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = healthy_run(tmp_path / "a"), tmp_path / "b"
    write_metrics_only_job(b, "mlp2", "torch", 0, 0.95, 1.0, 0.1)
    assert compare(a, b, GATE) == 1
    out = capsys.readouterr().out
    assert f"B: {job_id('mlp2', 'keras')} missing (finished in A)" in out
    assert "1 problem(s) listed above" in out


def test_a_healthy_candidate_passes_and_a_failed_baseline_job_is_not_held_against_b(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = healthy_run(tmp_path / "a"), healthy_run(tmp_path / "b")
    write_metrics_only_job(a, "mlp2_bn", "torch", 0, 0.95, 1.0, 0.1)
    failed_job(a, "torch")  # overwrites A's mlp2 torch job: failed in A, ok in B
    write_metrics_only_job(b, "mlp2_bn", "torch", 0, 0.95, 1.0, 0.1)
    assert compare(a, b, GATE) == 0
    assert "problem" not in capsys.readouterr().out


@pytest.mark.parametrize("which", ["a", "b"])
def test_a_folder_that_is_no_run_is_an_error_not_a_pass(
        which: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = {"a": healthy_run(tmp_path / "a"), "b": healthy_run(tmp_path / "b")}
    runs[which] = tmp_path / "empty"
    runs[which].mkdir()
    assert compare(runs["a"], runs["b"], GATE) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err == (f"error: RUN_{which.upper()}: {runs[which]}: not a `harness run` folder "
                   "(neither run.json nor jobs/ in it)")
