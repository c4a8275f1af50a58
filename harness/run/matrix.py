"""The whole matrix in one command, resumable: the library behind `harness run`.

Every spec (x sweep point) x backend x seed is a job run in its own process (a crash or a leak
in one framework cannot take the run down or disturb the next job's timings). Finished jobs are
skipped when the same command runs again (harness.run.resume); a failed job is recorded and
the run goes on, except for want of space: every job after it would fail too, so the run stops
there (stop_when_full). Before anything is written, a `preflight` (check_resources for `harness
run`) can refuse a run whose jobs could not run here. One `harness run` at a time writes a run
folder (harness.run.folder). The plan, resume and records are the same whichever executor
places the jobs (harness.run.executors).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.records import folders
from harness.records.models import JobRecord, PartialJob
from harness.run.display import Display, PlainDisplay
from harness.run.executors import Executor
from harness.run.folder import run_folder_lock, write_plan, write_summary
from harness.run.job import FULL_DISK, Job, Placement, at_step, step_started
from harness.run.plan import Plan, RunConfig, plan_jobs
from harness.run.progress import Eta, expected_work, model_kind
from harness.run.resume import jobs_to_run
from harness.spec import ModelSpec
from harness.training.checkpoint import epochs_done

Printer = Callable[[str], None]
Preflight = Callable[[RunConfig, Plan, Printer], None]


def status_text(record: PartialJob, step: str | None = None) -> str:
    """What a finished job came to; `step`: the step its output last started, named when its
    record names none (a process that died before recording its failure)."""
    if record.status == "ok":
        return "ok"
    if record.status == folders.UNAVAILABLE:
        return f"unavailable: {record.error}"
    return f"FAILED{at_step(record.failed_step or step)}: {record.error}"


def stop_when_full(job_dir: Path, record: PartialJob) -> None:
    """Raise the OSError of a job that failed for want of space (ENOSPC, EDQUOT), naming its
    folder: the run stops there, rather than start every job left only to fail it the same
    way after its training (the command line says to free space and run it again; the job,
    recorded failed, runs again then)."""
    if record.status != "failed":
        return
    error = record.error or ""
    for code in sorted(FULL_DISK):  # the system's words for it, as an OSError prints them
        if os.strerror(code) in error:
            raise OSError(code, os.strerror(code), str(job_dir))


class ProgressTracker:
    """The executor's JobEvents: numbers the jobs, learns the ETA, tells the display; stops the
    run when a job failed for want of space (stop_when_full)."""

    def __init__(self, plan: Plan, todo: list[Job], slots: int, display: Display,
                 work: dict[str, float] | None = None, run_dir: Path | None = None,
                 finished: dict[str, JobRecord] | None = None) -> None:
        """`work`: each job's work left (default: all of it); `run_dir`: the run folder;
        `finished`: the job.json of the plan's jobs finished already (as resume read them),
        which the ETA learns from before any job of this run finishes. `records` gathers them
        and those of the jobs finishing: the run's summary counts them."""
        self.display, self.total = display, len(plan.jobs)
        self.done = self.total - len(todo)
        self.pending = [job.job_id for job in todo]
        self.eta = Eta(work=work or {job.job_id: expected_work(job, plan.specs[job.spec])
                                     for job in todo},
                       backend={job.job_id: job.backend for job in todo},
                       kind={job.job_id: model_kind(plan.specs[job.spec]) for job in todo},
                       slots=slots)
        learn_finished(self.eta, plan, finished or {})
        self.records: dict[str, JobRecord] = dict(finished or {})
        self.run_dir = run_dir
        self.epochs = {job.job_id: job.epochs or plan.specs[job.spec].train.epochs
                       for job in todo}
        self.number: dict[str, int] = {}
        self.steps: dict[str, str] = {}  # job_id -> the step its output last started
        self.started_count = self.done
        display.overall(self.done, self.total, self.eta.text(self.pending))

    def _prefix(self, job_id: str) -> str:
        return f"[{self.number[job_id]}/{self.total} {self.eta.text(self.pending)}]"

    def started(self, job: Job, placement: Placement) -> None:
        self.started_count += 1
        self.number[job.job_id] = self.started_count
        self.pending.remove(job.job_id)
        self.eta.started(job.job_id)
        self.display.job_started(job.job_id, self._prefix(job.job_id),
                                 self.epochs.get(job.job_id))

    def line(self, job: Job, line: str) -> None:
        step = step_started(line)
        if step is not None:
            self.steps[job.job_id] = step
        self.display.job_line(job.job_id, line)

    def finished(self, job: Job, record: JobRecord) -> None:
        if job.job_id not in self.number:  # an executor that does not say when jobs start
            self.started_count += 1
            self.number[job.job_id] = self.started_count
            self.pending.remove(job.job_id)
        self.done += 1
        self.records[job.job_id] = record
        self.eta.finished(job.job_id, (record.phases or {}).get("total"))
        self.display.job_finished(job.job_id,
                                  f"{self._prefix(job.job_id)} {job.job_id}: "
                                  f"{status_text(record, self.steps.pop(job.job_id, None))}")
        self.display.overall(self.done, self.total, self.eta.text(self.pending))
        stop_when_full(folders.job_dir(self.run_dir or Path(), job.job_id), record)


def learn_finished(eta: Eta, plan: Plan, finished: dict[str, JobRecord]) -> None:
    """Teach `eta` the seconds of the plan's jobs `finished` ok already (an earlier `harness
    run` of the same plan; their job.json by job id): a resumed run's ETA from its start."""
    for job in plan.jobs:
        record = finished.get(job.job_id)
        total = (record.phases or {}).get("total") if record is not None else None
        if record is None or record.status != "ok" or total is None:  # None: an older record
            continue
        spec = plan.specs[job.spec]
        after_epoch = record.resumed.after_epoch if record.resumed else 0
        eta.learn(job.backend, model_kind(spec), expected_work(job, spec, after_epoch), total)


def checkpointed(run_dir: Path, todo: list[Job], show: Printer) -> dict[str, int]:
    """The jobs whose training continues from a checkpoint, with its epochs; says which."""
    done = {job.job_id: epochs_done(folders.checkpoint_dir(run_dir, job.job_id)) for job in todo}
    done = {job_id: epochs for job_id, epochs in done.items() if epochs}
    if done:
        show(f"{len(done)} job(s) continue from their checkpoints: "
             + ", ".join(f"{job_id} after epoch {epochs}" for job_id, epochs in done.items()))
    return done


def order_jobs(todo: list[Job], work: dict[str, float], resumed: dict[str, int]) -> list[Job]:
    """With several jobs at once: first the jobs that continue from a checkpoint (their
    results land first, and a run stopped again and again never leaves them behind), then
    the largest expected work first, so no long job starts late and runs alone at the end
    (plan order on ties)."""
    return sorted(todo, key=lambda job: (job.job_id not in resumed, -work[job.job_id]))


def require_backend(name: str, device: str) -> None:
    """BackendUnavailable unless backend `name` can run on `device` in this process: the check
    `harness train` makes, by making the backend."""
    from harness.backends import get_backend

    get_backend(name, device=device)


def _check_backends(backends: list[str], device: str) -> None:
    """BackendUnavailable, as `harness train` says it, for the first of `backends` whose
    framework is missing or cannot use `device`. On the CPU, whether the frameworks are
    installed (found, not imported); on CUDA, each backend made on it in a process of its own
    (a process holds one Keras backend; the driver loads no framework), all at once."""
    from harness.backends import BackendUnavailable, not_installed

    if device == "cpu":
        missing = next(filter(None, map(not_installed, backends)), None)
        if missing:
            raise BackendUnavailable(missing)
        return
    from harness.backends.isolation import BackendProcess

    with ExitStack() as stack:
        workers = [stack.enter_context(BackendProcess()) for _ in backends]
        for worker, name in zip(workers, backends, strict=True):
            worker.send(__name__, require_backend.__name__, name, device)
        for worker, name in zip(workers, backends, strict=True):
            try:
                worker.receive(f"the {name} check")
            except BackendUnavailable:
                raise
            except Exception as exc:  # a worker that died loading the framework: one line too
                raise BackendUnavailable(f"backend {name!r} cannot be made on {device}: "
                                         f"{exc}") from exc


def check_npz_spec(spec: ModelSpec, limit: int | None, limit_test: int | None) -> None:
    """A spec's .npz read and checked (BadNpz), with the limits and the validation split
    against its sizes (UsageError): every job's data problem, once, before the run."""
    from harness import data as data_module
    from harness.spec.shapes import num_classes

    raw = data_module.load_input_raw(spec.input, classes=num_classes(spec))
    for option, value, count in (("--limit", limit, len(raw.y_train)),
                                 ("--limit-test", limit_test, len(raw.y_test))):
        if value is not None and value > count:
            raise UsageError(f"{option} {value}: {spec.name}'s {spec.input.dataset_label} has "
                             f"{count} {'training' if option == '--limit' else 'test'} samples")
    if spec.train.validation_split is not None:
        data_module.split_index(limit or len(raw.y_train), spec.train.validation_split)


def check_resources(config: RunConfig, plan: Plan, show: Printer) -> None:
    """What the plan's jobs need and `harness train` checks before it trains, checked once
    before the run starts rather than failing each job in turn: the datasets in the data
    folder (DataError; downloaded once when missing), each backend's framework and device
    (BackendUnavailable)."""
    from harness.data import SPLIT_SIZES, ensure_files, split_index

    for dataset in sorted({spec.input.dataset_name for spec in plan.specs.values()
                           if spec.input.npz is None}):
        ensure_files(dataset, config.data_dir, download=config.download)
    for spec in plan.specs.values():
        if spec.input.npz is not None:
            check_npz_spec(spec, config.limit, config.limit_test)
        elif spec.train.validation_split is not None:  # a split that leaves a side empty
            size = SPLIT_SIZES[spec.input.dataset_name]["training"]
            split_index(config.limit or size, spec.train.validation_split)
    backends = sorted({job.backend for job in plan.jobs})
    if config.device != "cpu":
        show(f"checking that {', '.join(backends)} can train on {config.device}")
    _check_backends(backends, config.device)


def run_matrix(config: RunConfig, run_dir: Path, show: Printer = print, *,
               executor: Executor | None = None, display: Display | None = None,
               preflight: Preflight | None = None) -> dict[str, Any]:
    """Run every job not finished yet; return (and write) the run's summary (summary.json:
    harness.records.models.RunSummary, as JSON). A command that
    cannot be planned, a plan `preflight` refuses (check_resources), or a folder another run
    holds, raises before anything is written. Default executor: one local job at a time;
    default display: plain lines to `show`."""
    from harness.run.executors.local import LocalExecutor

    run_dir = Path(run_dir)
    executor = executor or LocalExecutor()
    display = display or PlainDisplay(show)
    try:
        plan = plan_jobs(config)
        if preflight is not None:
            preflight(config, plan, display.message)
        with run_folder_lock(run_dir):
            write_plan(plan, config, run_dir)
            todo, finished = jobs_to_run(run_dir, plan.jobs, display.message)
            records = dict(finished)
            if todo:
                if executor.description:
                    display.message(executor.description)
                resumed = checkpointed(run_dir, todo, display.message)
                # the work left: the epochs a checkpoint holds are done
                work = {job.job_id: expected_work(job, plan.specs[job.spec],
                                                  resumed.get(job.job_id, 0)) for job in todo}
                if executor.slots > 1:  # one at a time: the plan's order, as it reads
                    todo = order_jobs(todo, work, resumed)
                tracker = ProgressTracker(plan, todo, executor.slots, display, work, run_dir,
                                          finished)
                executor.run(run_dir, todo, tracker)
                records = tracker.records
            return write_summary(run_dir, plan.jobs, records).record()
    finally:
        display.close()
