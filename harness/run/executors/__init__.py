"""Executors: where and when each job of a plan runs. The plan, resume and records are shared
(harness.run.matrix, harness.run.folder); an executor only places jobs and hands each finished
one back.

    local               one job at a time, unpinned: timings as undisturbed as the machine
    local --workers N   N jobs at once, each pinned to its own cores (and GPU)
    ray                 each job a Ray task on a cluster, its folder sent back to the driver
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.errors import UsageError
from harness.records.models import JobRecord
from harness.run.job import Job, Placement

EXECUTORS = ("local", "ray")


class ExecutorUnavailable(RuntimeError):
    """An executor that cannot run here (Ray not installed, no cluster to reach)."""


class JobEvents(Protocol):
    """What the driver hears of each job; called from the thread that called `run`."""

    def started(self, job: Job, placement: Placement) -> None: ...

    def line(self, job: Job, line: str) -> None: ...

    def finished(self, job: Job, record: JobRecord) -> None:
        """`record`: its job.json, as finish_job read it."""


class Executor(Protocol):
    name: str
    description: str  # shown when the run starts (empty: nothing to say)

    @property
    def slots(self) -> int:
        """How many jobs run at once (for the ETA)."""

    def run(self, run_dir: Path, jobs: Sequence[Job], events: JobEvents) -> None:
        """Run every job; each ends as RUN_DIR/jobs/<job_id> (harness.run.folder.finish_job)
        before `events.finished` hears of it."""


@dataclass(frozen=True)
class ExecutorChoice:
    """The command line's choice of executor (none of it changes a job's result)."""

    name: str = "local"
    workers: int = 1  # local: jobs at once
    ray_address: str | None = None  # ray: None = $RAY_ADDRESS, else a new local cluster
    ray_retries: int = 2  # ray: retries of a job whose worker was lost
    fetch_models: bool = False  # ray: bring the framework's model files back too
    fresh_processes: bool = False  # local: a new interpreter per job, not a warm fork


def make_executor(choice: ExecutorChoice, threads: int | None, needs_gpu: bool) -> Executor:
    """The executor for a run whose jobs have `threads` (None: their cores) and may use CUDA."""
    if choice.name not in EXECUTORS:
        raise UsageError(f"--executor {choice.name}: expected one of {list(EXECUTORS)}")
    if choice.name == "local":
        given = [option for option, used in (
            ("--ray-address", choice.ray_address is not None),
            ("--ray-retries", choice.ray_retries != ExecutorChoice.ray_retries),
            ("--fetch-models", choice.fetch_models)) if used]
        if given:
            raise UsageError(f"{given[0]}: only with --executor ray")
        from harness.run.executors.local import LocalExecutor

        return LocalExecutor(choice.workers, threads, needs_gpu,
                             warm=not choice.fresh_processes)
    if choice.workers != 1:
        raise UsageError(f"--workers {choice.workers}: only with --executor local; Ray runs "
                         "as many jobs at once as its cluster has CPUs (each job asks for "
                         "--threads CPUs, default 1)")
    from harness.run.executors.ray_cluster import RayExecutor

    return RayExecutor(address=choice.ray_address, max_retries=choice.ray_retries,
                       keep_models=choice.fetch_models, cpus=threads or 1,
                       gpus=1 if needs_gpu else 0)
