"""Training checkpoints: a training cut short (a stopped sitting, a killed process) continues
from its last finished epoch instead of its first, with the same result as if it had never
stopped: weights, optimizer state and dropout RNG are restored (Backend.save_training_state)
and each epoch's sample order depends only on the seed and the epoch (harness.data).

    CHECKPOINT_DIR/
      progress.json        kind "checkpoint": what is being trained (`training`, which must
                           match for a resume), the finished epochs' records, when the
                           training started, the wall seconds it spent so far, each resume
      state-epoch<N>.bin   the backend's training state after epoch N

After each epoch the state is written first, then progress.json (atomically), then the older
state removed: wherever a kill lands, progress.json names a complete state file. A checkpoint
damaged all the same (a disk error, a cut copy) is discarded with a line saying so, and the
training starts over: it never fails its job.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.base import Backend
from harness.measure.environment import utc_now
from harness.records.io import RESULT_SCHEMA_VERSION, read_json, write_json_atomic

CHECKPOINT_KIND = "checkpoint"
PROGRESS_FILE = "progress.json"


@dataclass
class Progress:
    """Where a training stands, as progress.json keeps it."""

    started_utc: str
    history: list[dict[str, Any]] = field(default_factory=list)  # EpochRecord fields
    wall_seconds: float = 0.0  # spent by the processes before this one
    # one per resume: after which epoch, when, on which host
    resumes: list[dict[str, Any]] = field(default_factory=list)


def epochs_done(directory: Path) -> int:
    """How many epochs the checkpoint in `directory` holds (0: none, or unreadable), for
    estimates; whether it is resumed from is decided when the training starts."""
    try:
        return int(read_json(Path(directory) / PROGRESS_FILE)["epochs_done"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _briefly(exc: BaseException) -> str:
    """The exception's type and the first line of its message (torch's run to pages)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


def _state_name(epoch: int) -> str:
    return f"state-epoch{epoch:04d}.bin"


class TrainingCheckpoint:
    """The checkpoint folder of one training, identified by `training` (spec hash, backend,
    seed, epochs, batch size, data and run settings): a folder holding another training's
    progress is never resumed from, it is started over."""

    def __init__(self, directory: Path, training: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.training = training
        self.save_seconds = 0.0  # spent writing checkpoints in this process

    def restore(self, backend: Backend, model: Any) -> Progress | None:
        """The saved progress of this training with its state loaded into `model` (built and
        seeded from the same spec), or None (the folder cleared) when there is none, it is
        another training's, or it is damaged: the training starts over. Says on stderr what it
        did, naming the folder by its name only (a job's log is a committed record: no
        machine's paths in it)."""
        progress_file = self.directory / PROGRESS_FILE
        if not progress_file.is_file():
            return None
        try:
            record = read_json(progress_file)
            if record.get("training") != self.training:
                return self._start_over(self.directory.name, "it is another training's (spec, "
                                        "backend, seed, epochs or settings differ)")
            progress = Progress(record["started_utc"], list(record["history"]),
                                float(record["wall_seconds"]), list(record["resumes"]))
            state = self.directory / str(record["state_file"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return self._start_over(self._named(progress_file), f"damaged ({_briefly(exc)})")
        if progress.history:
            try:
                backend.load_training_state(model, state)
            except (OSError, ValueError) as exc:  # a backend's: unreadable, or not this model's
                return self._start_over(self._named(state),
                                        f"damaged ({_briefly(exc.__cause__ or exc)})")
        done = len(progress.history)
        progress.resumes.append({"after_epoch": done, "utc": utc_now(),
                                 "host": socket.gethostname()})
        print(f"resuming from checkpoint {self.directory.name}: {done} epoch(s) done",
              file=sys.stderr, flush=True)
        return progress

    def _named(self, path: Path) -> str:
        return f"{self.directory.name}/{path.name}"

    def _start_over(self, what: str, why: str) -> None:
        print(f"checkpoint {what} not used, training from the first epoch: {why}; discarded",
              file=sys.stderr, flush=True)
        self.clear()
        return None

    def save(self, backend: Backend, model: Any, progress: Progress,
             wall_seconds: float) -> None:
        """After an epoch: `model`'s state and `progress` (its history up to that epoch);
        `wall_seconds`: the training's total so far, earlier processes included."""
        start = time.perf_counter()
        self.directory.mkdir(parents=True, exist_ok=True)
        epoch = len(progress.history)
        state = _state_name(epoch)
        backend.save_training_state(model, self.directory / state)
        write_json_atomic(self.directory / PROGRESS_FILE, {
            "schema_version": RESULT_SCHEMA_VERSION, "kind": CHECKPOINT_KIND,
            "training": self.training, "started_utc": progress.started_utc,
            "epochs_done": epoch, "state_file": state, "history": progress.history,
            "wall_seconds": wall_seconds, "resumes": progress.resumes,
            "saved_utc": utc_now()})
        for old in self.directory.glob("state-epoch*.bin"):
            if old.name != state:
                old.unlink(missing_ok=True)
        self.save_seconds += time.perf_counter() - start

    def clear(self) -> None:
        """Away with the folder: the training finished (or is started over)."""
        shutil.rmtree(self.directory, ignore_errors=True)
