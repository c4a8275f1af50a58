"""Quiet re-timing of a run: `harness retime RUN_DIR`, the library behind it.

A long run's accuracies hold whatever else the machine did meanwhile; its timings do not
(harness.measure.machine_load flags each epoch and latency figure taken on a busy machine).
Re-timing
runs, on a quiet machine, one job per spec x sweep point x backend x compile mode of the run
(its lowest seed) for a couple of full epochs: the same job in every setting that decides its
timings (data, batch size, threads, layout, maths, initial weights and batch order, export and
latency steps), only `epochs` changed. Its records go to RUN_DIR/retime/, a run folder of its
own (resumable; a re-timing that was itself busy runs again); `harness report RUN_DIR` then
shows those quiet timings in place of the run's busy ones, labelled as re-timed
(harness.report.retimed). The run's own records are never touched.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

from harness.measure.machine_load import is_noisy
from harness.records import folders
from harness.records.checks import DamagedRecord, ok_jobs, read_record
from harness.records.folders import JobFolder
from harness.records.io import RESULT_SCHEMA_VERSION, write_json_atomic
from harness.records.models import PartialLatency, PartialTraining
from harness.run.display import Display
from harness.run.executors import Executor
from harness.run.folder import run_folder_lock, write_summary
from harness.run.job import Job, new_job
from harness.run.matrix import ProgressTracker
from harness.run.plan import Plan, option_defaults
from harness.run.resume import jobs_to_run
from harness.spec import ModelSpec, load_spec

DEFAULT_EPOCHS = 2  # the first (warm-up, compilation) and one steady epoch
RETIME_KIND = "retime"


def retime_dir(run_dir: Path) -> Path:
    return Path(run_dir) / folders.RETIME_DIR  # a run folder of re-timed jobs, same job ids


def timing_key(config: dict[str, Any]) -> tuple[str, str, str, str]:
    """What a re-timing stands for: spec, sweep point, backend and compile mode (the seed does
    not change the work an epoch or an inference does)."""
    return (str(config.get("base_spec") or config.get("spec")),
            json.dumps(config.get("overrides") or {}, sort_keys=True),
            str(config.get("backend")), str(config.get("compile") or option_defaults()["compile"]))


def _loads(folder: JobFolder) -> list[dict[str, Any] | None]:
    """The machine load of each epoch and latency figure the job's records give (a record
    missing or damaged: nothing timed to judge)."""
    loads: list[dict[str, Any] | None] = []
    with contextlib.suppress(DamagedRecord):
        loads += [epoch.machine_load
                  for epoch in read_record(folder.metrics, PartialTraining).history]
    with contextlib.suppress(DamagedRecord):
        loads += [entry.stats.machine_load if entry.stats else None
                  for entry in read_record(folder.latency, PartialLatency).records]
    return loads


def busy_timings(folder: JobFolder) -> bool:
    """Whether any epoch or latency figure of a finished job was timed on a busy machine."""
    return any(is_noisy(load) for load in _loads(folder))


def _finished_ok(run_dir: Path) -> list[tuple[JobFolder, dict[str, Any]]]:
    return [(folder, job.config) for folder, job in ok_jobs(run_dir)]


def run_specs(run_dir: Path) -> set[str]:
    """The names of the specs the run's finished jobs trained (before any sweep point)."""
    return {timing_key(config)[0] for _, config in _finished_ok(run_dir)}


def _as_job(config: dict[str, Any], epochs: int) -> Job:
    """The finished job's config with `epochs` changed (an older record's missing fields as
    their defaults, as resume reads them)."""
    fields = {**option_defaults(), **config, "epochs": epochs}
    return new_job(**{key: fields[key] for key in Job.model_fields if key != "config_hash"})


def plan_retimes(run_dir: Path, epochs: int = DEFAULT_EPOCHS, everything: bool = False,
                 specs: list[str] | None = None) -> list[Job]:
    """One re-timing job per timing key of the run's finished ok jobs (its lowest seed): each
    key with a busy timing, or every key with `everything`; only specs named in `specs`."""
    groups: dict[tuple[str, str, str, str], list[tuple[JobFolder, dict[str, Any]]]] = {}
    for folder, config in _finished_ok(run_dir):
        if specs is None or timing_key(config)[0] in specs:
            groups.setdefault(timing_key(config), []).append((folder, config))
    jobs = []
    for members in groups.values():
        if everything or any(busy_timings(folder) for folder, _ in members):
            _, config = min(members, key=lambda member: (member[1].get("seed") or 0,
                                                         member[0].name))
            jobs.append(_as_job(config, epochs))
    return sorted(jobs, key=lambda job: job.job_id)


def _drop_busy_retimes(out: Path, jobs: list[Job], display: Display) -> None:
    """A re-timing that was itself timed on a busy machine is worth nothing: run it again."""
    for job in jobs:
        folder = JobFolder.of(out, job.job_id)
        if folder.path.is_dir() and busy_timings(folder):
            display.message(f"{job.job_id}: its re-timing was busy too; timing it again")
            shutil.rmtree(folder.path)


def _write_plan(run_dir: Path, out: Path, jobs: list[Job], epochs: int) -> Plan:
    specs: dict[str, ModelSpec] = {}
    for job in jobs:
        source = folders.spec_file(run_dir, job.spec)
        target = folders.spec_file(out, job.spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        specs[job.spec] = load_spec(target)
    write_json_atomic(out / folders.RUN_FILE, {
        "schema_version": RESULT_SCHEMA_VERSION, "kind": RETIME_KIND, "of": "..",
        "epochs": epochs, "jobs": [job.record() for job in jobs]})
    return Plan(specs=specs, jobs=jobs)


def retime_run(run_dir: Path, executor: Executor, display: Display, *,
               epochs: int = DEFAULT_EPOCHS, everything: bool = False,
               specs: list[str] | None = None) -> dict[str, Any]:
    """Re-time the run's busy timings (every timing with `everything`) in RUN_DIR/retime;
    return its summary (RunSummary, as JSON). Holds the run folder's lock: no `harness run`
    writes it meanwhile (and none could, undisturbed, while this times)."""
    run_dir = Path(run_dir)
    out = retime_dir(run_dir)
    try:
        with run_folder_lock(run_dir):
            jobs = plan_retimes(run_dir, epochs, everything, specs)
            out.mkdir(exist_ok=True)
            _drop_busy_retimes(out, jobs, display)
            plan = _write_plan(run_dir, out, jobs, epochs)
            todo, records = jobs_to_run(out, jobs, display.message)
            if todo:
                tracker = ProgressTracker(plan, todo, executor.slots, display, run_dir=out,
                                          finished=records)
                executor.run(out, todo, tracker)
                records = tracker.records
            return write_summary(out, jobs, records).record()
    finally:
        display.close()
