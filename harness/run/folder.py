"""The run folder (harness.records.folders) as `harness run` writes it: one writer at a time, the
plan, each job's folder put in place whole, the summary.

A job works in a hidden partial folder (wherever it ran, its folder ends up there) and is
renamed to `jobs/<job_id>` only when it holds a job.json, so a killed job leaves no folder
that looks finished. Every executor finishes its jobs through `finish_job`.

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
from harness.records.io import RESULT_SCHEMA_VERSION, read_json, write_json_atomic
from harness.run.job import Job, Placement, last_step
from harness.run.plan import Plan, RunConfig
from harness.run.records import DamagedRecord, JobShape, read_record
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
    work = folders.partial_dir(run_dir, job_id)
    _remove(work)
    work.mkdir(parents=True)
    return work


def failed_record(job: Job, error: str, placement: Placement | None,
                  log_text: str = "") -> dict[str, Any]:
    """job.json of a job whose process ended without writing one: the step its output
    (`log_text`, its job.log) last started, and the log's last line (the exception, e.g. a
    full disk while writing its record) after `error`."""
    last_line = next((line.strip() for line in reversed(log_text.splitlines())
                      if line.strip()), "")
    if last_line and last_line not in error:
        error = f"{error}; its output ended with: {last_line[:300]}"
    return {"schema_version": RESULT_SCHEMA_VERSION, "kind": "job", "job_id": job.job_id,
            "status": "failed", "failed_step": last_step(log_text), "config": job.record(),
            "error": error,
            "placement": placement.record() if placement else None, "started_utc": None,
            "finished_utc": utc_now()}


def finish_job(run_dir: Path, job: Job, lost: str | None,
               placement: Placement | None = None) -> dict[str, Any]:
    """Put the job's partial folder in place as `jobs/<job_id>` and return its job.json. A job
    whose process died before recording anything gets a failed job.json saying `lost`."""
    work = folders.partial_dir(run_dir, job.job_id)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / folders.JOB_FILE).is_file():
        log = work / folders.JOB_LOG_FILE
        log_text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        write_json_atomic(work / folders.JOB_FILE, failed_record(
            job, lost or "the job recorded nothing", placement, log_text))
    final = folders.job_dir(run_dir, job.job_id)
    _remove(final)  # an earlier folder of the job: changed since, or damaged (harness.run.resume)
    work.rename(final)
    return read_json(final / folders.JOB_FILE)


def _summary_record(path: Path) -> dict[str, Any]:
    """A job's job.json as the summary counts it: missing, damaged, or as recorded."""
    if not path.is_file():
        return {"status": "missing"}
    try:
        return read_record(path, JobShape)
    except DamagedRecord as exc:
        return {"status": "damaged", "error": str(exc)}


def write_summary(run_dir: Path, jobs: list[Job]) -> dict[str, Any]:
    records = {job.job_id: _summary_record(folders.job_dir(run_dir, job.job_id) / folders.JOB_FILE)
               for job in jobs}
    failed = [{"job_id": job_id, "failed_step": r.get("failed_step"), "error": r.get("error")}
              for job_id, r in records.items()
              if r.get("status") not in ("ok", folders.UNAVAILABLE)]
    # a compile mode this platform cannot run: recorded with its reason, not a failure
    unavailable = [{"job_id": job_id, "reason": r.get("error")}
                   for job_id, r in records.items() if r.get("status") == folders.UNAVAILABLE]
    summary = {"schema_version": RESULT_SCHEMA_VERSION, "kind": "summary",
               "finished_utc": utc_now(), "jobs": len(jobs),
               "ok": len(jobs) - len(failed) - len(unavailable), "failed": failed,
               "unavailable": unavailable}
    write_json_atomic(Path(run_dir) / folders.SUMMARY_FILE, summary)
    return summary
