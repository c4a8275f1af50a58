"""Exact resume: a finished job counts only under the same resume key.

The key holds every job field that can change its result or its timings (harness.run.job), so
a changed setting re-runs the jobs it touches, and says so, rather than mixing old and new
records. A record written before an option existed counts as recorded with the option's
default (the behaviour before it), so a long run survives an upgrade.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.results import read_json
from harness.run import layout
from harness.run.job import Job, resume_fields
from harness.run.plan import option_defaults

Printer = Callable[[str], None]


def _display(value: Any) -> str:
    return "default" if value is None else json.dumps(value, sort_keys=True)


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON values (a list and a tuple, 1 and 1.0 are the same setting)."""
    def as_json(value: Any) -> Any:
        return json.loads(json.dumps(value, sort_keys=True, default=str))

    return as_json(old) == as_json(new)


def changes(recorded: dict[str, Any], job: Job) -> tuple[str, ...]:
    """What differs between a finished job's recorded config and the job now planned; empty
    when nothing does. A field missing from an older record counts as its option's default."""
    missing, defaults = object(), option_defaults()
    found = []
    for key, value in resume_fields(job.record()).items():
        old = recorded.get(key, defaults.get(key, missing))
        if old is missing:
            found.append(f"{key} not recorded -> {_display(value)}")
        elif not _same(old, value):
            found.append(f"{key} changed {_display(old)} -> {_display(value)}")
    return tuple(found)


def resume_state(run_dir: Path, job: Job) -> tuple[bool, tuple[str, ...]]:
    """(finished, changes): finished when an ok job.json holds the same resume key; changes say
    why an ok job must run again (empty for a job never finished)."""
    path = layout.job_dir(run_dir, job.job_id) / layout.JOB_FILE
    if not path.is_file():
        return False, ()
    record = read_json(path)
    if record.get("status") != "ok":
        return False, ()
    recorded = record.get("config") or {}
    if recorded.get("config_hash") == job.config_hash:
        return True, ()
    found = changes(recorded, job)
    return not found, found


def jobs_to_run(run_dir: Path, jobs: list[Job], show: Printer) -> list[Job]:
    """The jobs not finished under the same resume key; says which finished ones run again and
    which job folders are not part of this plan."""
    todo: list[Job] = []
    reruns: Counter[tuple[str, ...]] = Counter()
    for job in jobs:
        finished, found = resume_state(run_dir, job)
        if not finished:
            todo.append(job)
        if found:
            reruns[found] += 1
    show(f"{len(jobs)} jobs: {len(jobs) - len(todo)} already finished, {len(todo)} to run")
    for found, count in reruns.items():
        show(f"{count} finished job{'s' if count > 1 else ''} re-run: {', '.join(found)}")
    planned = {job.job_id for job in jobs}
    others = [p.name for p in layout.finished_job_dirs(run_dir) if p.name not in planned]
    if others:
        show(f"note: {len(others)} job folder(s) in {run_dir / layout.JOBS_DIR} are not part of "
             f"this command (kept; `harness report` reads them too): {', '.join(others[:3])}"
             f"{', ...' if len(others) > 3 else ''}")
    return todo
