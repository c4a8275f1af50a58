"""A `harness run` killed in the middle of a job's training continues that job from its last
finished epoch when started again, instead of from its first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.records import folders
from harness.training.checkpoint import PROGRESS_FILE

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

EPOCHS = 30
JOB = "mlp2--torch--seed0"


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "harness", "run", "--specs", "mlp2", "--backends", "torch",
            "--epochs", str(EPOCHS), "--limit", "3000", "--limit-test", "300",
            "--batch-sizes", "1", "--threads", "1", "--out", str(out)]


def _epochs_done(checkpoint: Path) -> int:
    try:
        return json.loads((checkpoint / PROGRESS_FILE).read_text())["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


def test_a_run_killed_mid_training_resumes_the_job_from_its_checkpoint(tmp_path: Path) -> None:
    if not (Path(os.environ.get("HARNESS_DATA_DIR", "")) / "mnist").is_dir():
        pytest.skip("needs the MNIST files (HARNESS_DATA_DIR)")
    out = tmp_path / "run"
    checkpoint = folders.checkpoint_dir(out, JOB)
    first = subprocess.Popen(_command(out), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while _epochs_done(checkpoint) < 2 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the run and its job processes, mid-epoch
    first.wait()
    done = _epochs_done(checkpoint)
    assert 2 <= done < EPOCHS, "the job was not caught in the middle of its training"
    assert not (folders.job_dir(out, JOB) / folders.JOB_FILE).exists()

    second = subprocess.run(_command(out), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"1 job(s) continue from their checkpoints: {JOB} after epoch {done}" in second.stdout
    job = folders.job_dir(out, JOB)
    metrics = json.loads((job / folders.METRICS_FILE).read_text())
    assert [e["epoch"] for e in metrics["history"]] == list(range(1, EPOCHS + 1))
    resumed_after = metrics["checkpoint"]["resumes"][0]["after_epoch"]
    assert done <= resumed_after < EPOCHS  # a later epoch may have landed before the kill
    log = (job / folders.JOB_LOG_FILE).read_text()
    assert f"{resumed_after} epoch(s) done" in log and str(tmp_path) not in log
    assert f"progress resumed from its checkpoint after epoch {resumed_after}/{EPOCHS}" in log
    phases = json.loads((job / folders.JOB_FILE).read_text())["phases"]
    assert all(seconds >= 0 for seconds in phases.values()), phases  # this process's share
    assert metrics["wall_seconds"] > metrics["checkpoint"]["wall_seconds_before"] > 0
    assert not checkpoint.exists()  # removed once the training ended
    record = json.loads((job / folders.JOB_FILE).read_text())
    assert record["resumed"]["after_epoch"] == resumed_after
    assert record["resumed"]["earlier_seconds"] == metrics["checkpoint"]["wall_seconds_before"]
    assert sorted(p.name for p in (out / folders.JOBS_DIR).iterdir()) == [JOB]
    # the report counts the job's time over both processes
    from harness.report.load import load_run

    row = load_run(out).jobs.set_index("job_id").loc[JOB]
    assert row["job_seconds"] == pytest.approx(record["seconds"]
                                               + record["resumed"]["earlier_seconds"])
    assert row["resumed_after_epoch"] == resumed_after
    # and dates it from its first process, not from the one that finished it
    assert row["started_utc"] == metrics["started_utc"] < record["started_utc"]
