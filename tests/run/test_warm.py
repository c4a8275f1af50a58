"""Warm job servers: each job in a process of its own, forked from a server that imported the
framework once; a job killed mid-way is recorded as failed and the next one still runs."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from harness.records import folders
from harness.records.io import read_json
from harness.run.display import PlainDisplay
from harness.run.executors.local import LocalExecutor
from harness.run.executors.warm import SERVER_MODULE
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
if not (Path(os.environ.get("HARNESS_DATA_DIR", "")) / "mnist").is_dir():
    pytest.skip("needs the MNIST files (HARNESS_DATA_DIR)", allow_module_level=True)

CONFIG = RunConfig(specs=["mlp2"], backends=["torch"], seeds=[0, 1], batch_sizes=[1],
                   epochs=1, limit=200, limit_test=100, threads=1, latency_warmup=0,
                   latency_min_runs=2, latency_min_seconds=0.0)
KILLED, NEXT = "mlp2--torch--seed0", "mlp2--torch--seed1"


def _servers() -> list[psutil.Process]:
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if SERVER_MODULE in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:  # ended meanwhile
            continue
    return found


class KillFirstJob(PlainDisplay):
    """Kills the first job's process (the job server's child) when it starts training."""

    def job_line(self, job_id: str, line: str) -> None:
        super().job_line(job_id, line)
        if job_id == KILLED and line.startswith("step train"):
            for server in _servers():
                for child in server.children():
                    child.kill()


def test_jobs_fork_from_a_warm_server_and_a_killed_one_is_recorded(tmp_path: Path) -> None:
    out, lines = tmp_path / "run", []
    summary = run_matrix(CONFIG, out, executor=LocalExecutor(warm=True),
                         display=KillFirstJob(lines.append))
    killed = read_json(folders.job_dir(out, KILLED) / folders.JOB_FILE)
    assert killed["status"] == "failed" and "exited with status -9" in killed["error"]
    record = read_json(folders.job_dir(out, NEXT) / folders.JOB_FILE)
    assert record["status"] == "ok" and record["placement"]["warm"] is True, record["error"]
    assert list(record["phases"]) == [*folders.JOB_PHASES, "total"]
    assert summary["ok"] == 1 and not _servers()  # closed with the run
    assert "ready" in (out / folders.SERVERS_DIR / "torch-worker0.log").read_text()
    assert any(line.startswith("Each job forked from a warm process") for line in lines)
