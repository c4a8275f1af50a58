"""The run folder (harness.records.folders) as `harness run` writes it: one writer at a time, the
plan, each job's folder put in place whole, the summary.

A job works in a hidden partial folder (wherever it ran, its folder ends up there) and is
renamed to `jobs/<job_id>` only when it holds a job.json, so a killed job leaves no folder
that looks finished. Every executor finishes its jobs through `finish_job`, which reads the
job's job.json once (its process wrote it); the summary counts the records so read.

A folder whose fixed entries are not what they must be (a file named `jobs`) is refused in one
line before anything is written; a resumed run keeps run.json's `created_utc`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.measure.environment import utc_now
from harness.records import folders
from harness.records.checks import DamagedRecord, read_record
from harness.records.folders import JobFolder
from harness.records.io import RESULT_SCHEMA_VERSION, read_json, write_json_atomic
from harness.records.models import JobRecord, PartialJob, RunSummary, job_record
from harness.run.job import Job, Placement, last_step
from harness.run.plan import Plan, RunConfig
from harness.spec.loader import dump_spec


def _holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on host {holder['host']} since {holder['started_utc']}"
    except (ValueError, TypeError, KeyError):
        return "a run that is starting"


# What a run folder's fixed entries must be where they exist (a retime folder is a run folder).
_FOLDERS = (folders.JOBS_DIR, folders.SPECS_DIR, folders.SERVERS_DIR, folders.RETIME_DIR)
_FILES = (folders.LOCK_FILE, folders.RUN_FILE, folders.SUMMARY_FILE)


def _refuse_unless(path: Path, is_right: bool, allowed: str) -> None:
    if (path.exists() or path.is_symlink()) and not is_right:
        kind = ("a folder" if path.is_dir() else "a file" if path.is_file()
                else "neither file nor folder")  # a dangling link, a device
        raise UsageError(f"{path}: {kind}: {allowed}; move it away, or choose another --out")


def check_run_folder(run_dir: Path) -> None:
    """UsageError where `run_dir` or one of its fixed entries (its retime folder's too) is not
    what a run folder holds there: a file named `jobs` would fail every job of the run."""
    _refuse_unless(run_dir, run_dir.is_dir(), "a run folder must be a folder")
    for folder in (run_dir, run_dir / folders.RETIME_DIR):
        for name in _FOLDERS:
            path = folder / name
            _refuse_unless(path, path.is_dir(), f"a run folder's `{name}` must be a folder")
        for name in _FILES:
            path = folder / name
            _refuse_unless(path, path.is_file(), f"a run folder's `{name}` must be a file")


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """One writer per run folder: hold an exclusive flock on RUN_DIR/.lock while writing it.
    The kernel drops the lock when the holder ends, however it ends, so a killed run never
    leaves the folder locked. The file is written in place (never renamed over: the lock
    belongs to the file the holder opened). A folder check_run_folder refuses is not locked."""
    check_run_folder(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / folders.LOCK_FILE, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise UsageError(
                f"--out {run_dir}: run folder in use by another `harness run` "
                f"({_holder(handle.read())}): wait for it to finish, stop it, or choose "
                "another --out") from None
        handle.truncate(0)
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started_utc": utc_now()}))
        handle.flush()
        yield


def _started(run_dir: Path) -> dict[str, Any]:
    """run.json's `created_utc`, the first `harness run` on the folder, kept as it was, and
    `resumed_utc`, when each later one started (an unreadable run.json: a new folder)."""
    now = utc_now()
    try:
        earlier = read_json(run_dir / folders.RUN_FILE)
    except (OSError, ValueError):
        earlier = None
    if not isinstance(earlier, dict) or not isinstance(earlier.get("created_utc"), str):
        return {"created_utc": now, "resumed_utc": []}
    resumed = earlier.get("resumed_utc")
    return {"created_utc": earlier["created_utc"],
            "resumed_utc": [*(resumed if isinstance(resumed, list) else []), now]}


def write_plan(plan: Plan, config: RunConfig, run_dir: Path) -> None:
    """Specs, run.json; and away with the partial folders of a killed run (under the lock, no
    other run can be writing them). Training checkpoints stay, this command's and others' on
    the same folder alike: a job resumes from its own (harness.training.checkpoint)."""
    for name, spec in plan.specs.items():
        spec_file = folders.spec_file(run_dir, name)
        spec_file.parent.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(dump_spec(spec), encoding="utf-8")
    write_json_atomic(run_dir / folders.RUN_FILE, {
        "schema_version": RESULT_SCHEMA_VERSION, "kind": "run", **_started(run_dir),
        "config": asdict(config), "jobs": [job.record() for job in plan.jobs]})
    for stale in (run_dir / folders.JOBS_DIR).glob(".*.partial"):
        shutil.rmtree(stale, ignore_errors=True)


def spec_text(run_dir: Path, job: Job) -> str:
    """The YAML of the job's spec, as write_plan wrote it."""
    return folders.spec_file(run_dir, job.spec).read_text(encoding="utf-8")


def _remove(path: Path) -> None:
    """Away with whatever is at `path`: a folder, or a file where a folder belongs."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def fresh_partial_dir(run_dir: Path, job_id: str) -> Path:
    """The job's partial folder, empty."""
    work = JobFolder.partial(run_dir, job_id).path
    _remove(work)
    work.mkdir(parents=True)
    return work


def failed_record(job: Job, error: str, placement: Placement | None,
                  log_text: str = "") -> JobRecord:
    """job.json of a job whose process ended without writing one: the step its output
    (`log_text`, its job.log) last started, and the log's last line (the exception, e.g. a
    full disk while writing its record) after `error`."""
    last_line = next((line.strip() for line in reversed(log_text.splitlines())
                      if line.strip()), "")
    if last_line and last_line not in error:
        error = f"{error}; its output ended with: {last_line[:300]}"
    return job_record(job.job_id, job.record(), placement.record() if placement else None,
                      status="failed", error=error, failed_step=last_step(log_text),
                      finished_utc=utc_now())


def finish_job(run_dir: Path, job: Job, lost: str | None,
               placement: Placement | None = None) -> JobRecord:
    """Put the job's partial folder in place as `jobs/<job_id>` and return its job.json. A job
    whose process died before recording anything, or recorded a job.json that does not read
    back, gets a failed job.json saying `lost` (and the damage)."""
    work = JobFolder.partial(run_dir, job.job_id)
    work.path.mkdir(parents=True, exist_ok=True)
    try:
        record = read_record(work.job, JobRecord)
    except DamagedRecord as exc:
        why = lost or "the job recorded nothing"
        if work.job.is_file():  # written, but not whole: the run cannot count it
            why = "; ".join(filter(None, (lost, str(exc))))
        log_text = (work.log.read_text(encoding="utf-8", errors="replace")
                    if work.log.is_file() else "")
        record = failed_record(job, why, placement, log_text)
        write_json_atomic(work.job, record.record())
    final = JobFolder.of(run_dir, job.job_id).path
    _remove(final)  # an earlier folder of the job: changed since, or damaged (harness.run.resume)
    work.path.rename(final)
    return record


MISSING = "missing"  # summary.json: a job that has no job.json


def write_summary(run_dir: Path, jobs: list[Job], records: dict[str, JobRecord]) -> RunSummary:
    """summary.json of `jobs`, from their job.json `records` as finish_job and resume read
    them (a job with none: missing)."""
    summary = RunSummary.of({job.job_id: records.get(job.job_id) or PartialJob(status=MISSING)
                             for job in jobs}, utc_now())
    write_json_atomic(Path(run_dir) / folders.SUMMARY_FILE, summary.record())
    return summary
