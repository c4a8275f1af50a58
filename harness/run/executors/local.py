"""Jobs on this machine: one at a time (the default), or `--workers N` at once, each pinned to
its own disjoint cores (os.sched_setaffinity, so its thread budget is its cores) and, when the
run uses CUDA, to its own GPU (CUDA_VISIBLE_DEVICES).

Each job runs in a process of its own: by default one forked from a warm job server per
framework and worker (harness.run.job_server: imports paid once), or a freshly started
interpreter (`warm=False`; always for CUDA runs, whose processes must not be forked)."""

from __future__ import annotations

import queue
import shutil
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from harness.records import folders
from harness.run.executors import JobEvents
from harness.run.executors.child import RunningJob, start_job_process
from harness.run.executors.cores import split_cores, split_gpus
from harness.run.executors.warm import ServerPool
from harness.run.folder import finish_job, fresh_partial_dir, spec_text
from harness.run.job import Job, Placement
from harness.run.job_server import FORK_SAFE_BACKENDS

# (slot, a line of its job's output; None: the output ended)
_Lines = queue.Queue[tuple[int, str | None]]


def slot_placements(workers: int, threads: int | None, needs_gpu: bool) -> list[Placement]:
    """Where each of `workers` slots runs its jobs (a single slot: unpinned, as before)."""
    if workers == 1:
        return [Placement(executor="local")]
    gpu_ids = split_gpus(workers) if needs_gpu else [None] * workers
    return [Placement(executor="local", slot=slot, cpus=cpus, gpu=gpu)
            for slot, (cpus, gpu) in enumerate(zip(split_cores(workers, threads), gpu_ids,
                                                   strict=True))]


class LocalExecutor:
    name = "local"

    def __init__(self, workers: int = 1, threads: int | None = None, needs_gpu: bool = False,
                 command: Sequence[str] | None = None, warm: bool = False) -> None:
        """`command`: the job process's command less its WORK_DIR (default: job_command);
        `warm`: fork jobs from warm job servers instead (not with a `command`)."""
        self.placements = slot_placements(workers, threads, needs_gpu)
        self.command, self.warm = command, warm and command is None and not needs_gpu
        self.description = " ".join(filter(None, (
            "" if workers == 1 else f"{workers} jobs at once: " + "; ".join(
                f"worker {p.slot} on cores {','.join(map(str, p.cpus or ()))}"
                + (f" and GPU {p.gpu}" if p.gpu is not None else "") for p in self.placements)
            + ".",
            "Each job forked from a warm process per framework (--fresh-processes: a new "
            "interpreter per job)." if self.warm else "")))

    @property
    def slots(self) -> int:
        return len(self.placements)

    def _start(self, run_dir: Path, job: Job, slot: int, lines: _Lines,
               servers: ServerPool) -> tuple[RunningJob, threading.Thread]:
        work, text = fresh_partial_dir(run_dir, job.job_id), spec_text(run_dir, job)
        child: RunningJob
        if self.warm and job.backend in FORK_SAFE_BACKENDS:
            child = servers.start(slot, job, text, self.placements[slot], work)
        else:
            child = start_job_process(job, text, self.placements[slot], work, self.command,
                                      checkpoint=folders.checkpoint_dir(run_dir, job.job_id))

        def pump() -> None:
            for line in child.lines():
                lines.put((slot, line))
            lines.put((slot, None))

        reader = threading.Thread(target=pump, name=f"harness-job-{slot}", daemon=True)
        reader.start()
        return child, reader

    def run(self, run_dir: Path, jobs: Sequence[Job], events: JobEvents) -> None:
        pending, free = deque(jobs), deque(range(self.slots))
        running: dict[int, tuple[RunningJob, threading.Thread]] = {}
        lines: _Lines = queue.Queue()
        servers = ServerPool(run_dir)
        try:
            while pending or running:
                while pending and free:
                    slot, job = free.popleft(), pending.popleft()
                    running[slot] = self._start(run_dir, job, slot, lines, servers)
                    events.started(job, self.placements[slot])
                slot, line = lines.get()
                child, reader = running[slot]
                if line is not None:
                    events.line(child.job, line)
                    continue
                reader.join()
                del running[slot]
                free.append(slot)
                lost = child.wait()
                events.finished(child.job, finish_job(run_dir, child.job, lost, child.placement))
        except BaseException:  # Ctrl-C: stop the jobs in flight, lose only them
            for child, reader in running.values():
                child.kill()
                reader.join()
                shutil.rmtree(child.work, ignore_errors=True)
            raise
        finally:
            servers.close()
