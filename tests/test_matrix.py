"""`harness run`: a tiny matrix end to end, killed mid-run, resumed; a failing job is recorded
and does not stop the others."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.records import folders
from harness.run.job_process import PHASES
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig, plan_jobs, resolve_specs
from harness.spec import SpecError

pytest.importorskip("torch")
pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")

SHARED_DATA = Path(os.environ.get("HARNESS_DATA_DIR", ""))

FASHION_SPEC = """\
input: {dataset: fashion-mnist, shape: [784]}
layers:
  - {type: dense, units: 16, activation: relu}
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}
  batch_size: 64
  epochs: 1
"""


def test_resolve_specs_names_globs_all_and_files(tmp_path: Path) -> None:
    assert resolve_specs(["lenet5_*"]) == ["lenet5_bn_all", "lenet5_bn_dropout",
                                           "lenet5_bn_hidden", "lenet5_dropout"]
    assert len(resolve_specs(["all"])) == 41
    assert resolve_specs(["mlp2", "mlp2"]) == ["mlp2"]
    with pytest.raises(SpecError, match="matches no zoo spec"):
        resolve_specs(["nothing_like_this*"])


def test_plan_expands_specs_sweeps_seeds_backends() -> None:
    config = RunConfig(specs=["mlp2"], backends=["keras", "torch"], seeds=[0, 1],
                       sets=["layers[*].activation=relu,tanh"])
    plan = plan_jobs(config)
    assert len(plan.jobs) == 8 and len({job.job_id for job in plan.jobs}) == 8
    assert "mlp2--activation-tanh--torch--seed1" in {job.job_id for job in plan.jobs}
    assert sorted(plan.specs) == ["mlp2--activation-relu", "mlp2--activation-tanh"]
    assert {job.spec for job in plan.jobs} == set(plan.specs)


def test_records_are_relative_so_a_moved_run_reports_and_resumes(tmp_path: Path) -> None:
    """Every path in a finished job's records names its file from the record's folder, never
    the hidden partial folder the job ran in, so the run folder can move."""
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip("needs the MNIST files (HARNESS_DATA_DIR)")
    config = RunConfig(specs=["mlp2"], backends=["torch"], batch_sizes=[1], epochs=1,
                       limit=200, limit_test=100, threads=1, latency_warmup=0,
                       latency_min_runs=2, latency_min_seconds=0.0)
    first = tmp_path / "first"
    summary = run_matrix(config, first, show=lambda line: None)
    assert summary["ok"] == 1, summary
    moved = Path(shutil.move(first, tmp_path / "moved"))
    for path in moved.rglob("*.json"):
        text = path.read_text()
        assert str(tmp_path) not in text and ".partial" not in text, path
    job = folders.job_dir(moved, "mlp2--torch--seed0")
    record = json.loads((job / folders.JOB_FILE).read_text())
    assert list(record["phases"]) == [*PHASES, "total"]  # each part of the job's time
    assert all(seconds >= 0 for seconds in record["phases"].values())
    assert record["placement"]["executor"] == "local" and record["placement"]["threads"] == 1
    metrics = json.loads((job / folders.METRICS_FILE).read_text())
    assert [e["path"] for e in metrics["exports"]] == [folders.ONNX_FILE]
    export = json.loads((job / folders.EXPORT_RECORD_FILE).read_text())
    assert export["weights"]["run_dir"] == "." and export["file"] == folders.ONNX_FILE
    latency = json.loads((job / folders.LATENCY_FILE).read_text())
    assert latency["weights"]["torch"]["run_dir"] == "."
    ort = [r for r in latency["records"] if r["runtime"] == "onnxruntime"]
    assert ort and {r["model"]["file"] for r in ort} == {folders.ONNX_FILE}
    assert all(r["model"]["reused"] for r in ort)  # the checked export, not a second one

    from harness.report import write_report

    report = write_report(moved)
    assert "mlp2" in (report / "report.md").read_text()
    lines: list[str] = []
    run_matrix(config, moved, show=lines.append)
    assert "1 jobs: 1 already finished, 0 to run" in lines


# `harness run` with its up-front check of the datasets turned off: it would refuse the missing
# Fashion-MNIST before any job; here those jobs must fail in their own processes, mid-run
_WITHOUT_PREFLIGHT = ("import sys; import harness.run.matrix as matrix; "
                      "matrix.check_resources = lambda *args: None; "
                      "from harness.cli import main; sys.exit(main(sys.argv[1:]))")


def _run_command(data_dir: Path, out: Path, user_spec: Path) -> list[str]:
    return [sys.executable, "-c", _WITHOUT_PREFLIGHT, "run", "--specs",
            f"mlp2,mlp2_bn,{user_spec}",
            "--backends", "torch,keras", "--epochs", "1", "--limit", "600", "--limit-test", "300",
            "--batch-sizes", "1", "--threads", "1", "--data-dir", str(data_dir), "--out", str(out)]


def _job_records(out: Path) -> dict[str, dict]:
    return {p.name: json.loads((p / folders.JOB_FILE).read_text())
            for p in folders.finished_job_dirs(out)}


@pytest.mark.slow
def test_killed_run_resumes_and_failed_job_does_not_stop_others(tmp_path: Path) -> None:
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip("needs the MNIST files (HARNESS_DATA_DIR)")
    data_dir = tmp_path / "data"  # MNIST only: the Fashion-MNIST spec's jobs must fail
    data_dir.mkdir()
    (data_dir / "mnist").symlink_to(SHARED_DATA / "mnist")
    user_spec = tmp_path / "fashion_mlp.yaml"
    user_spec.write_text(FASHION_SPEC)
    out = tmp_path / "run"
    command = _run_command(data_dir, out, user_spec)

    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not _job_records(out) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)  # killed mid-run, as by the OOM killer or kill -9
    first.wait()
    before = _job_records(out)
    assert 1 <= len(before) < 6

    second = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert second.returncode == 1, second.stdout + second.stderr  # the failed jobs say so
    assert f"{len(before)} already finished" in second.stdout
    after = _job_records(out)
    jobs_dir = out / folders.JOBS_DIR
    assert sorted(p.name for p in jobs_dir.iterdir()) == sorted(after)  # no partial folders
    assert len(after) == 6  # every job exactly once
    for job_id, record in before.items():  # finished jobs were not run again
        assert after[job_id]["started_utc"] == record["started_utc"]
    failed = {job_id for job_id, record in after.items() if record["status"] == "failed"}
    assert failed == {"fashion_mlp--torch--seed0", "fashion_mlp--keras--seed0"}
    for job_id in failed:
        assert after[job_id]["failed_step"] == "train"
        assert "fashion-mnist" in after[job_id]["error"]
        assert "failed: " + job_id in second.stderr
    for job_id in set(after) - failed:
        job = jobs_dir / job_id
        assert json.loads((job / folders.EXPORT_RECORD_FILE).read_text())["passed"]
        latency = json.loads((job / folders.LATENCY_FILE).read_text())
        assert any(r["status"] == "ok" and r["runtime"] == "onnxruntime"
                   for r in latency["records"])
    summary = json.loads((out / folders.SUMMARY_FILE).read_text())
    assert summary["ok"] == 4 and len(summary["failed"]) == 2
