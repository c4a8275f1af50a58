"""What a user watches while `harness run` works: plain lines (a log, a pipe, a test) or, on a
terminal, rich progress bars (the run's jobs with a work-based ETA, one line per job in flight).

Only a job's progress lines (`step`, `epoch`, `progress`) are shown; everything else a job
prints (framework notices, TensorFlow's C++ log lines, tracebacks) stays in its job log unless
the run is --verbose.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from harness.run.executors.child import PROGRESS_PREFIXES

# a job's epoch lines (harness.run.job_process.EpochProgress): `progress epoch 2/3 ...` while in
# epoch 2, `epoch 2/3 loss ...` when it ends, `progress resumed ... after epoch 7/12`
EPOCH_LINE = re.compile(r"(?P<kind>progress epoch|epoch|progress resumed.*epoch) "
                        r"(?P<epoch>\d+)/(?P<epochs>\d+)")

Printer = Callable[[str], None]


class Display(Protocol):
    def message(self, text: str) -> None: ...

    def job_started(self, job_id: str, prefix: str, epochs: int | None = None) -> None: ...

    def job_line(self, job_id: str, line: str) -> None: ...

    def job_finished(self, job_id: str, text: str) -> None: ...

    def overall(self, done: int, total: int, eta: str) -> None: ...

    def close(self) -> None: ...


def is_progress(line: str) -> bool:
    return line.startswith(PROGRESS_PREFIXES)


def epochs_done(line: str) -> tuple[int, int] | None:
    """(epochs finished, epochs in all) that a job's epoch line says, else None."""
    match = EPOCH_LINE.match(line)
    if match is None:
        return None
    epoch, epochs = int(match["epoch"]), int(match["epochs"])
    return (epoch - 1 if match["kind"] == "progress epoch" else epoch), epochs


class PlainDisplay:
    """One line per job progress line (prefixed with the job's number and the ETA when it
    started) and per finished job."""

    def __init__(self, show: Printer = print, verbose: bool = False) -> None:
        self.show, self.verbose = show, verbose
        self._prefix: dict[str, str] = {}

    def message(self, text: str) -> None:
        self.show(text)

    def job_started(self, job_id: str, prefix: str, epochs: int | None = None) -> None:
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
    """A bar for the run (jobs done of all), a bar per job in flight (epochs done of its
    epochs, once its first epoch line says how many) with its latest progress line; finished
    jobs and messages scroll above them."""

    def __init__(self, console: Console, verbose: bool = False) -> None:
        self.verbose = verbose
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[count]}"),
                                 TextColumn("{task.fields[eta]}"),
                                 console=console, transient=True)
        self._run = self.progress.add_task("jobs", total=None, count="", eta="ETA learning")
        self._jobs: dict[str, TaskID] = {}
        self.progress.start()

    def _print(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def message(self, text: str) -> None:
        self._print(text)

    def job_started(self, job_id: str, prefix: str, epochs: int | None = None) -> None:
        # the plan's epochs from the start; a resumed job's first epoch line corrects `done`
        self._jobs[job_id] = self.progress.add_task(
            f"  {job_id}", total=epochs, count="" if epochs is None else f"epochs 0/{epochs}",
            eta="starting")

    def job_line(self, job_id: str, line: str) -> None:
        if self.verbose:
            self._print(f"{job_id}: {line.rstrip()}")
        task = self._jobs.get(job_id)
        if not is_progress(line) or task is None:
            return
        self.progress.update(task, eta=line.strip())
        epochs = epochs_done(line)
        if epochs is not None:
            done, total = epochs
            self.progress.update(task, completed=done, total=total,
                                 count=f"epochs {done}/{total}")

    def job_finished(self, job_id: str, text: str) -> None:
        task = self._jobs.pop(job_id, None)
        if task is not None:
            self.progress.remove_task(task)
        self._print(text)

    def overall(self, done: int, total: int, eta: str) -> None:
        self.progress.update(self._run, completed=done, total=total, count=f"{done}/{total}",
                             eta=eta)

    def close(self) -> None:
        self.progress.stop()
