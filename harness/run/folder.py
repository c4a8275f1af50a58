"""The run folder (harness.run.layout) as `harness run` writes it: one writer at a time, the
plan, each job's folder put in place whole, the summary.

A job works in a hidden partial folder (wherever it ran, its folder ends up there) and is
renamed to `jobs/<job_id>` only when it holds a job.json, so a killed job leaves no folder
that looks finished. Every executor finishes its jobs through `finish_job`.
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

from harness.env import utc_now
from harness.errors import UsageError
from harness.results import RESULT_SCHEMA_VERSION, read_json, write_json_atomic
from harness.run import layout
from harness.run.job import Job, Placement
from harness.run.plan import Plan, RunConfig
from harness.spec.loader import dump_spec


def _holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on host {holder['host']} since {holder['started_utc']}"
    except (ValueError, TypeError, KeyError):
        return "a run that is starting"


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """One writer per run folder: hold an exclusive flock on RUN_DIR/.lock while writing it.
    The kernel drops the lock when the holder ends, however it ends, so a killed run never
    leaves the folder locked. The file is written in place (never renamed over: the lock
    belongs to the file the holder opened)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / layout.LOCK_FILE, "a+", encoding="utf-8") as handle:
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


def write_plan(plan: Plan, config: RunConfig, run_dir: Path) -> None:
    """Specs, run.json; and away with the partial folders of a killed run (under the lock, no
    other run can be writing them). Training checkpoints stay, this command's and others' on
    the same folder alike: a job resumes from its own (harness.training.checkpoint)."""
    for name, spec in plan.specs.items():
        spec_file = layout.spec_file(run_dir, name)
        spec_file.parent.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(dump_spec(spec), encoding="utf-8")
    write_json_atomic(run_dir / layout.RUN_FILE, {
        "schema_version": RESULT_SCHEMA_VERSION, "kind": "run", "created_utc": utc_now(),
        "config": asdict(config), "jobs": [job.record() for job in plan.jobs]})
    for stale in (run_dir / layout.JOBS_DIR).glob(".*.partial"):
        shutil.rmtree(stale, ignore_errors=True)


def spec_text(run_dir: Path, job: Job) -> str:
    """The YAML of the job's spec, as write_plan wrote it."""
    return layout.spec_file(run_dir, job.spec).read_text(encoding="utf-8")


def fresh_partial_dir(run_dir: Path, job_id: str) -> Path:
    """The job's partial folder, empty."""
    work = layout.partial_dir(run_dir, job_id)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def failed_record(job: Job, error: str, placement: Placement | None) -> dict[str, Any]:
    """job.json of a job whose process ended without writing one."""
    return {"schema_version": RESULT_SCHEMA_VERSION, "kind": "job", "job_id": job.job_id,
            "status": "failed", "failed_step": None, "config": job.record(), "error": error,
            "placement": placement.record() if placement else None, "started_utc": None,
            "finished_utc": utc_now()}


def finish_job(run_dir: Path, job: Job, lost: str | None,
               placement: Placement | None = None) -> dict[str, Any]:
    """Put the job's partial folder in place as `jobs/<job_id>` and return its job.json. A job
    whose process died before recording anything gets a failed job.json saying `lost`."""
    work = layout.partial_dir(run_dir, job.job_id)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / layout.JOB_FILE).is_file():
        write_json_atomic(work / layout.JOB_FILE, failed_record(
            job, lost or "the job recorded nothing", placement))
    final = layout.job_dir(run_dir, job.job_id)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return read_json(final / layout.JOB_FILE)


def write_summary(run_dir: Path, jobs: list[Job]) -> dict[str, Any]:
    records = {}
    for job in jobs:
        path = layout.job_dir(run_dir, job.job_id) / layout.JOB_FILE
        records[job.job_id] = read_json(path) if path.is_file() else {"status": "missing"}
    failed = [{"job_id": job_id, "failed_step": r.get("failed_step"), "error": r.get("error")}
              for job_id, r in records.items() if r.get("status") not in ("ok", layout.UNAVAILABLE)]
    # a compile mode this platform cannot run: recorded with its reason, not a failure
    unavailable = [{"job_id": job_id, "reason": r.get("error")}
                   for job_id, r in records.items() if r.get("status") == layout.UNAVAILABLE]
    summary = {"schema_version": RESULT_SCHEMA_VERSION, "kind": "summary",
               "finished_utc": utc_now(), "jobs": len(jobs),
               "ok": len(jobs) - len(failed) - len(unavailable), "failed": failed,
               "unavailable": unavailable}
    write_json_atomic(Path(run_dir) / layout.SUMMARY_FILE, summary)
    return summary
