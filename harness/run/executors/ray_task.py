"""The worker's side of a Ray job: run the job in its own process in a temporary folder and
send the folder back as a tar.gz (records, job log, ONNX file; the framework's model file and
the initial weights only when asked), so workers need no filesystem shared with the driver.

Nothing here imports Ray: the driver (harness.run.executors.ray_cluster) wraps `run_job_task`
as a task. The harness, its frameworks and the data must be installed on every worker.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import psutil

from harness.records.checks import DamagedRecord, read_record
from harness.records.folders import JobFolder
from harness.records.models import PartialTraining
from harness.run.executors.child import start_job_process
from harness.run.executors.cores import claim_cores
from harness.run.job import Job, Placement

FOLDER_PREFIX = "harness-job-"  # + the worker's pid: a folder whose worker is gone is stale


def _clear_lost_folders() -> None:
    """Remove the temporary folders of workers that were killed mid-job (nothing else would)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _model_files(work: Path) -> set[str]:
    """The framework's saved model and the initial weights (recomputable from spec and seed):
    left on the worker unless asked for. final_weights.npz, which the report reads, comes."""
    try:
        metrics = read_record(JobFolder(work).metrics, PartialTraining)
    except DamagedRecord:  # no training record: no model files to leave
        return set()
    return {name for name in (metrics.model_file, metrics.initial_weights_file) if name}


def pack(work: Path, keep_models: bool) -> bytes:
    """The folder's files (subfolders too: ONNX test data) as tar.gz bytes."""
    leave = set() if keep_models else _model_files(work)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(work.rglob("*")):
            name = path.relative_to(work).as_posix()
            if path.is_file() and not path.is_symlink() and name not in leave:
                tar.add(path, arcname=name, recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, work: Path) -> None:
    """Write the files of `pack` into `work`; only plain files inside it are taken."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or not parts or member.name.startswith("/") \
                    or ".." in parts:
                raise ValueError(f"unexpected entry {member.name!r} in a job's result")
            source = tar.extractfile(member)
            assert source is not None  # a regular file (checked above)
            target = work.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read())


def run_job_task(job_record: dict[str, Any], spec_text: str, cpus: int, keep_models: bool,
                 command: Sequence[str] | None = None) -> tuple[str | None, bytes]:
    """Run on a Ray worker: (why the job may have recorded nothing, or None; its folder)."""
    job = Job.model_validate(job_record)
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES") or None  # Ray's, for a task with GPUs
    _clear_lost_folders()
    with tempfile.TemporaryDirectory(prefix=f"{FOLDER_PREFIX}{os.getpid()}-") as tmp, \
            claim_cores(cpus) as claimed:
        work = Path(tmp)
        placement = Placement(executor="ray", cpus=claimed, gpu=gpu)
        child = start_job_process(job, spec_text, placement, work, command)
        for _ in child.lines():  # into the job log, which travels with the folder
            pass
        lost = child.wait()
        return lost, pack(work, keep_models)
