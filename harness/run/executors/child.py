"""A job's own process (harness.run.job_process), started the same way by every executor: the
job on its stdin, its output into the job log, pinned where its placement says, and killed by
the kernel when whatever started it dies (no orphan keeps writing into a folder the next run
will reuse)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol, TextIO

from harness.backends.isolation import die_with_parent
from harness.records import folders
from harness.records.folders import JobFolder
from harness.run.job import Job, Placement
from harness.run.job_process import job_input

JOB_MODULE = "harness.run.job_process"
# Lines of a job's output that say how far it is (the rest stays in the job log unless the
# run is --verbose: framework notices, TensorFlow's C++ log lines, tracebacks).
PROGRESS_PREFIXES = ("step ", "epoch ", "progress ")


def job_command() -> list[str]:
    """The job process's command, less its WORK_DIR argument."""
    return [sys.executable, "-m", JOB_MODULE]


def prepare_child(parent: int, cpus: Sequence[int] | None) -> None:
    """In a child, before exec: die with `parent` (the starting process's pid); pin to
    `cpus`."""
    die_with_parent(parent)
    if cpus:
        os.sched_setaffinity(0, cpus)


class RunningJob(Protocol):
    """A job's process in flight, however it was started."""

    job: Job
    placement: Placement
    work: Path

    def lines(self) -> Iterator[str]:
        """Its output lines as they come, each also written to the job log."""

    def wait(self) -> str | None:
        """Wait for the end; None, or why the job may have recorded nothing."""

    def kill(self) -> None: ...


@dataclass
class JobProcess:
    """A job process in flight, writing into `work`."""

    job: Job
    placement: Placement
    work: Path
    process: subprocess.Popen[str]
    log: TextIO

    def lines(self) -> Iterator[str]:
        """The job's output lines as they come, each also written to the job log (closed at
        the end of the output)."""
        assert self.process.stdout is not None  # started with stdout=PIPE
        with self.log:
            for line in self.process.stdout:
                self.log.write(line)
                self.log.flush()
                yield line

    def wait(self) -> str | None:
        """Wait for the end; None, or why the job may have recorded nothing."""
        code = self.process.wait()
        return None if code == 0 else (
            f"the job's process exited with status {code} (see {folders.JOB_LOG_FILE})")

    def kill(self) -> None:
        """Stop the job; the reader of `lines` then ends, and closes nothing."""
        self.process.kill()
        self.process.wait()


def start_job_process(job: Job, spec_text: str, placement: Placement, work: Path,
                      command: Sequence[str] | None = None,
                      checkpoint: Path | None = None) -> JobProcess:
    """Start the job into `work` (which must exist); its training checkpoints in `checkpoint`
    (none without)."""
    env = None
    if placement.gpu is not None:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": placement.gpu}
    payload = job_input(job, spec_text, placement, checkpoint)  # its time is the job's start
    log = open(JobFolder(work).log, "w", encoding="utf-8")  # noqa: SIM115 - JobProcess
    process = subprocess.Popen(
        [*(command or job_command()), str(work)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env,
        preexec_fn=partial(prepare_child, os.getpid(), placement.cpus))
    try:
        assert process.stdin is not None  # started with stdin=PIPE
        process.stdin.write(json.dumps(payload))
        process.stdin.close()
    except BrokenPipeError:  # it died at once; its exit status tells
        pass
    return JobProcess(job, placement, work, process, log)
