"""Exact resume: a finished job counts only under the same resume key.

The key holds every job field that can change its result or its timings (harness.run.job), so
a changed setting re-runs the jobs it touches, and says so, rather than mixing old and new
records. A record written before an option existed counts as recorded with the option's
default (the behaviour before it), so a long run survives an upgrade. Nor does a job count on
its job.json alone: every record it wrote must read back whole (harness.records.checks), else it
runs again, named.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from harness.records import folders
from harness.records.checks import DamagedRecord, finished_job_damage, read_record
from harness.records.folders import JobFolder
from harness.records.models import JobRecord
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


class ResumeState(NamedTuple):
    """`finished`: an ok job.json holds the same resume key and every record of the job reads
    back whole; else why an ok job runs again: `changes` to its settings, or `damage` to its
    records (harness.records.checks). Both are empty for a job never finished. `record`: its
    job.json, where it reads back."""

    finished: bool
    changes: tuple[str, ...] = ()
    damage: tuple[str, ...] = ()
    record: JobRecord | None = None


def resume_state(run_dir: Path, job: Job) -> ResumeState:
    folder = JobFolder.of(run_dir, job.job_id)
    if not folder.path.exists():
        return ResumeState(False)
    try:  # a folder is put in place only with its job.json: without one it is damaged
        record = read_record(folder.job, JobRecord)
    except DamagedRecord as exc:
        return ResumeState(False, damage=(exc.reason,))
    if record.status != "ok":
        return ResumeState(False, record=record)
    if record.config.get("config_hash") != job.config_hash:
        found = changes(record.config, job)
        if found:
            return ResumeState(False, changes=found, record=record)
    damage = tuple(exc.reason for exc in finished_job_damage(folder))
    return ResumeState(not damage, damage=damage, record=record)


def _some(names: list[str]) -> str:
    """The first three names, and `...` for more."""
    return f"{', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"


def _runs_again(count: int, why: tuple[str, ...]) -> str:
    return f"{count} finished job{'s' if count > 1 else ''} re-run: {', '.join(why)}"


class Resumable(NamedTuple):
    """The jobs to run, and the job.json of each job finished already, by job id."""

    todo: list[Job]
    finished: dict[str, JobRecord]


def jobs_to_run(run_dir: Path, jobs: list[Job], show: Printer) -> Resumable:
    """The jobs not finished under the same resume key with every record whole; says which
    finished ones run again (naming the damaged ones) and which job folders are not part of
    this plan. A damaged job's folder stays until its new one replaces it, as a changed job's
    does (harness.run.folder.finish_job)."""
    todo: list[Job] = []
    finished: dict[str, JobRecord] = {}
    reruns: Counter[tuple[str, ...]] = Counter()
    damaged: dict[tuple[str, ...], list[str]] = {}
    for job in jobs:
        state = resume_state(run_dir, job)
        if not state.finished:
            todo.append(job)
        elif state.record is not None:
            finished[job.job_id] = state.record
        if state.changes:
            reruns[state.changes] += 1
        if state.damage:
            damaged.setdefault(state.damage, []).append(job.job_id)
    show(f"{len(jobs)} jobs: {len(jobs) - len(todo)} already finished, {len(todo)} to run")
    for found, count in reruns.items():
        show(_runs_again(count, found))
    for damage, names in damaged.items():
        show(f"{_runs_again(len(names), damage)} ({_some(names)})")
    planned = {job.job_id for job in jobs}
    others = [p.name for p in folders.finished_job_dirs(run_dir) if p.name not in planned]
    if others:
        show(f"note: {len(others)} job folder(s) in {run_dir / folders.JOBS_DIR} are not part of "
             f"this command (kept; `harness report` reads them too): {_some(others)}")
    return Resumable(todo, finished)
