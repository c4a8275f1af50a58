"""The whole matrix in one command, resumable: the library behind `harness run`.

Every spec (x sweep point) x backend x seed is a job run in its own process (a crash or a leak
in one framework cannot take the run down or disturb the next job's timings). Finished jobs are
skipped when the same command runs again; a failed job is recorded and the run goes on.

A finished job counts only under the same resume key: every job field that can change its
result or its timings (see NOT_IN_RESUME_KEY), so a changed setting re-runs the jobs it touches,
and says so, rather than mixing old and new records. One `harness run` at a time writes a run
folder (run_folder_lock); a second one on the same folder is refused.
"""

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.env import utc_now
from harness.errors import UsageError
from harness.results import RESULT_SCHEMA_VERSION, read_json, write_json_atomic
from harness.run import layout
from harness.run.job_process import partial_dir
from harness.run.plan import Plan, RunConfig, plan_jobs, resume_fields
from harness.spec.loader import dump_spec


def _display(value: Any) -> str:
    return "default" if value is None else json.dumps(value, sort_keys=True)


def _option_defaults() -> dict[str, Any]:
    """Each run option's default: the behaviour of a job recorded before the option existed.
    (So a new option must default to what the harness did before it, which keeps long runs
    resumable across versions; an option that changes old behaviour needs a new job field.)"""
    return {item.name: item.default if item.default is not MISSING else item.default_factory()
            for item in fields(RunConfig)
            if item.default is not MISSING or item.default_factory is not MISSING}


def _same(old: Any, new: Any) -> bool:
    return json.dumps(old, sort_keys=True, default=str) == \
        json.dumps(new, sort_keys=True, default=str)


def _changes(recorded: dict[str, Any], job: dict[str, Any]) -> tuple[str, ...]:
    """What differs between a finished job's recorded config and the job now planned; empty
    when nothing does. A field missing from an older record counts as its option's default."""
    missing, defaults = object(), _option_defaults()
    changes = []
    for key, value in resume_fields(job).items():
        old = recorded.get(key, defaults.get(key, missing))
        if old is missing:
            changes.append(f"{key} not recorded -> {_display(value)}")
        elif not _same(old, value):
            changes.append(f"{key} changed {_display(old)} -> {_display(value)}")
    return tuple(changes)


def _resume_state(run_dir: Path, job: dict[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """(finished, changes): finished when an ok job.json holds the same resume key; changes say
    why an ok job must run again (empty for a job never finished)."""
    path = layout.job_dir(run_dir, job["job_id"]) / layout.JOB_FILE
    if not path.is_file():
        return False, ()
    record = read_json(path)
    if record.get("status") != "ok":
        return False, ()
    recorded = record.get("config") or {}
    if recorded.get("config_hash") == job["config_hash"]:
        return True, ()
    changes = _changes(recorded, job)
    return not changes, changes


@dataclass
class Progress:
    total: int
    done: int = 0
    durations: list[float] = field(default_factory=list)

    def eta(self, remaining: int) -> str:
        if not self.durations:
            return "ETA ?"
        seconds = int(sum(self.durations) / len(self.durations) * remaining)
        return f"ETA {seconds // 60}m{seconds % 60:02d}s"


Printer = Callable[[str], None]


def _die_with_parent() -> None:
    """In the child, before exec: if `harness run` is killed, the kernel kills the job too,
    so no orphan keeps writing into a folder the next run will reuse (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _run_one(run_dir: Path, job: dict[str, Any], prefix: str, show: Printer) -> dict[str, Any]:
    """Run a job in a child process, stream its progress, and move its folder into place."""
    job_id = job["job_id"]
    work = partial_dir(run_dir, job_id)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with open(work / layout.JOB_LOG_FILE, "w", encoding="utf-8") as log:
        command = [sys.executable, "-m", "harness.run.job_process", str(run_dir), job_id]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, bufsize=1, preexec_fn=_die_with_parent)
        try:
            for line in child.stdout:
                log.write(line)
                if line.startswith(("epoch ", "step ")):
                    show(f"{prefix} {job_id}: {line.strip()}")
            code = child.wait()
        except BaseException:  # Ctrl-C: stop the child, lose only this job
            child.kill()
            child.wait()
            shutil.rmtree(work, ignore_errors=True)
            raise
    if not (work / layout.JOB_FILE).is_file():  # the child died before recording anything
        write_json_atomic(work / layout.JOB_FILE, {
            "schema_version": RESULT_SCHEMA_VERSION, "kind": "job", "job_id": job_id,
            "status": "failed", "failed_step": None, "config": job,
            "error": f"the job's process exited with status {code} (see {layout.JOB_LOG_FILE})",
            "started_utc": None, "finished_utc": utc_now()})
    final = layout.job_dir(run_dir, job_id)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return read_json(final / layout.JOB_FILE)


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


def _write_plan(plan: Plan, config: RunConfig, run_dir: Path) -> None:
    """Specs, run.json; and away with the partial folders of a killed run (under the lock, no
    other run can be writing them)."""
    for name, spec in plan.specs.items():
        spec_file = layout.spec_file(run_dir, name)
        spec_file.parent.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(dump_spec(spec), encoding="utf-8")
    write_json_atomic(run_dir / layout.RUN_FILE, {
        "schema_version": RESULT_SCHEMA_VERSION, "kind": "run", "created_utc": utc_now(),
        "config": asdict(config), "jobs": plan.jobs})
    for stale in (run_dir / layout.JOBS_DIR).glob(".*.partial"):
        shutil.rmtree(stale, ignore_errors=True)


def _jobs_to_run(run_dir: Path, jobs: list[dict[str, Any]],
                 show: Printer) -> list[dict[str, Any]]:
    """The jobs not finished under the same resume key; says which finished ones run again and
    which job folders are not part of this plan."""
    todo: list[dict[str, Any]] = []
    reruns: Counter[tuple[str, ...]] = Counter()
    for job in jobs:
        finished, changes = _resume_state(run_dir, job)
        if not finished:
            todo.append(job)
        if changes:
            reruns[changes] += 1
    show(f"{len(jobs)} jobs: {len(jobs) - len(todo)} already finished, {len(todo)} to run")
    for changes, count in reruns.items():
        show(f"{count} finished job{'s' if count > 1 else ''} re-run: {', '.join(changes)}")
    planned = {job["job_id"] for job in jobs}
    others = [p.name for p in layout.finished_job_dirs(run_dir) if p.name not in planned]
    if others:
        show(f"note: {len(others)} job folder(s) in {run_dir / layout.JOBS_DIR} are not part of "
             f"this command (kept; `harness report` reads them too): {', '.join(others[:3])}"
             f"{', ...' if len(others) > 3 else ''}")
    return todo


def run_matrix(config: RunConfig, run_dir: Path, show: Printer = print) -> dict[str, Any]:
    """Run every job not finished yet; return (and write) the run's summary. A command that
    cannot be planned, or a folder another run holds, raises before anything is written."""
    run_dir = Path(run_dir)
    plan = plan_jobs(config)
    with run_folder_lock(run_dir):
        _write_plan(plan, config, run_dir)
        todo = _jobs_to_run(run_dir, plan.jobs, show)
        progress = Progress(total=len(plan.jobs), done=len(plan.jobs) - len(todo))
        for number, job in enumerate(todo, start=progress.done + 1):
            prefix = f"[{number}/{progress.total} {progress.eta(progress.total - number + 1)}]"
            started = time.perf_counter()
            record = _run_one(run_dir, job, prefix, show)
            progress.durations.append(time.perf_counter() - started)
            status = "ok" if record["status"] == "ok" else \
                f"FAILED at {record.get('failed_step')}: {record['error']}"
            show(f"{prefix} {job['job_id']}: {status}")
        return write_summary(run_dir, plan.jobs)


def write_summary(run_dir: Path, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    records = {}
    for job in jobs:
        path = layout.job_dir(run_dir, job["job_id"]) / layout.JOB_FILE
        records[job["job_id"]] = read_json(path) if path.is_file() else {"status": "missing"}
    failed = [{"job_id": job_id, "failed_step": r.get("failed_step"), "error": r.get("error")}
              for job_id, r in records.items() if r.get("status") != "ok"]
    summary = {"schema_version": RESULT_SCHEMA_VERSION, "kind": "summary",
               "finished_utc": utc_now(), "jobs": len(jobs), "ok": len(jobs) - len(failed),
               "failed": failed}
    write_json_atomic(Path(run_dir) / layout.SUMMARY_FILE, summary)
    return summary
