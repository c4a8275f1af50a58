"""What a user watches while `harness run` works: plain lines (a log, a pipe, a test) or, on a
terminal, rich progress bars (the run's jobs with a work-based ETA, one line per job in flight).

Only a job's progress lines (`step`, `epoch`, `progress`) are shown; everything else a job
prints (framework notices, TensorFlow's C++ log lines, tracebacks) stays in its job log unless
the run is --verbose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from harness.run.executors.child import PROGRESS_PREFIXES

STEP_PREFIX = "step "  # the first of PROGRESS_PREFIXES: `step train`, `step export`, ...

Printer = Callable[[str], None]


class Display(Protocol):
    def message(self, text: str) -> None: ...

    def job_started(self, job_id: str, prefix: str) -> None: ...

    def job_line(self, job_id: str, line: str) -> None: ...

    def job_finished(self, job_id: str, text: str) -> None: ...

    def overall(self, done: int, total: int, eta: str) -> None: ...

    def close(self) -> None: ...


def is_progress(line: str) -> bool:
    return line.startswith(PROGRESS_PREFIXES)


def step_started(line: str) -> str | None:
    """The step a job's `step <name>` line says it starts (harness.run.job_process), else
    None."""
    if not line.startswith(STEP_PREFIX):
        return None
    return line.removeprefix(STEP_PREFIX).strip() or None


class PlainDisplay:
    """One line per job progress line (prefixed with the job's number and the ETA when it
    started) and per finished job."""

    def __init__(self, show: Printer = print, verbose: bool = False) -> None:
        self.show, self.verbose = show, verbose
        self._prefix: dict[str, str] = {}

    def message(self, text: str) -> None:
        self.show(text)

    def job_started(self, job_id: str, prefix: str) -> None:
        self._prefix[job_id] = prefix

    def job_line(self, job_id: str, line: str) -> None:
        if self.verbose or is_progress(line):
            self.show(f"{self._prefix.get(job_id, '')} {job_id}: {line.rstrip()}".lstrip())

    def job_finished(self, job_id: str, text: str) -> None:
        self._prefix.pop(job_id, None)
        self.show(text)

    def overall(self, done: int, total: int, eta: str) -> None:
        """Plain lines carry the ETA in each job's prefix."""

    def close(self) -> None:
        """Nothing to tidy."""


class RichDisplay:
    """A bar for the run, a line per job in flight with its latest progress line; finished
    jobs and messages scroll above them."""

    def __init__(self, console: Console, verbose: bool = False) -> None:
        self.verbose = verbose
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[eta]}"),
                                 console=console, transient=True)
        self._run = self.progress.add_task("jobs", total=None, eta="ETA ?")
        self._jobs: dict[str, TaskID] = {}
        self.progress.start()

    def _print(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def message(self, text: str) -> None:
        self._print(text)

    def job_started(self, job_id: str, prefix: str) -> None:
        self._jobs[job_id] = self.progress.add_task(f"  {job_id}", total=None, eta="starting")

    def job_line(self, job_id: str, line: str) -> None:
        if self.verbose:
            self._print(f"{job_id}: {line.rstrip()}")
        if is_progress(line) and job_id in self._jobs:
            self.progress.update(self._jobs[job_id], eta=line.strip())

    def job_finished(self, job_id: str, text: str) -> None:
        task = self._jobs.pop(job_id, None)
        if task is not None:
            self.progress.remove_task(task)
        self._print(text)

    def overall(self, done: int, total: int, eta: str) -> None:
        self.progress.update(self._run, completed=done, total=total, eta=eta)

    def close(self) -> None:
        self.progress.stop()
