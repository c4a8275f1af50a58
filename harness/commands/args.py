"""Option types of the `harness` command line: every value is checked while parsing.

A bad value stops the command before anything runs, with one line on stderr naming the option,
the value and what is allowed, and exit status 2:

    harness train: error: --limit: 70000: expected 1 to 60000 (at most 60000 training images ...)
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from harness.backends.onnx_io import DEFAULT_OPSET
from harness.data import SPLIT_SIZES
from harness.errors import UsageError
from harness.records.folders import JOBS_DIR, RUN_FILE
from harness.run.job import FULL_DISK
from harness.run.sweeps import parse_set
from harness.spec.schema import MAX_SEED
from harness.training import FINAL_WEIGHTS_FILE, METRICS_FILE, SPEC_FILE

MAX_THREADS = 1024
MAX_BATCH_SIZE = 65_536  # a batch of MNIST images this big is ~200 MB of float32
MAX_RUNS = 1_000_000  # timed or warm-up calls per latency figure
MAX_SECONDS = 3600.0  # timed seconds per latency figure
MIN_OPSET = 14  # tf2onnx supports and tests opsets 14 to 18; DEFAULT_OPSET is the newest
T = TypeVar("T")
_DANGLING = "a link to nothing"  # a symbolic link whose target does not exist


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `harness run: error: --limit: 0: expected ...`, exit 2
    (no usage block: the line says what is wrong; `--help` says the rest)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message.removeprefix('argument ')}\n")


def _bad(value: object, allowed: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{value}: expected {allowed}")


def integer(low: int, high: int | None = None, allowed: str | None = None
            ) -> Callable[[str], int]:
    """An option type: a whole number from `low` to `high` (no upper bound when None)."""
    if allowed is None:
        allowed = {0: "an integer >= 0", 1: "a positive integer"}.get(low, f"an integer >= {low}")
        allowed += f" (at most {high})" if high is not None else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _bad(repr(text), allowed) from None
        if value < low or (high is not None and value > high):
            raise _bad(value, allowed)
        return value
    return parse


def number(low: float, high: float | None = None, *, above: bool = False
           ) -> Callable[[str], float]:
    """An option type: a finite number >= low (> low when `above`), <= high when given."""
    allowed = f"a finite number {'>' if above else '>='} {low:g}"
    allowed += f" and <= {high:g}" if high is not None else ""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _bad(repr(text), allowed) from None
        if not math.isfinite(value) or value < low or (above and value == low) \
                or (high is not None and value > high):
            raise _bad(text, allowed)
        return value
    return parse


def limit(split: str) -> Callable[[str], int]:
    """--limit / --limit-test: the first N images of `split` ("training" or "test"); N fits
    every dataset, so the check needs no spec."""
    most = min(sizes[split] for sizes in SPLIT_SIZES.values())
    return integer(1, most, f"1 to {most} (at most {most} {split} images in "
                            f"{' and '.join(SPLIT_SIZES)})")


def csv(kind: Callable[[str], T], choices: Sequence[str] | None = None
        ) -> Callable[[str], list[T]]:
    """A comma-separated list option, each item checked by `kind` (and in `choices`)."""
    def parse(text: str) -> list[T]:
        items = [kind(item.strip()) for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list")
        bad = [item for item in items if choices is not None and item not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad[0]!r}; expected one of "
                                             f"{list(choices or [])}")
        return items
    return parse


def _path(text: str) -> Path:
    """`text` as a path; an empty one is refused (Path would read it as the current folder,
    and a command would write there)."""
    if not text:
        raise argparse.ArgumentTypeError("'': expected a path (. for the current folder)")
    return Path(text)


def _kind(path: Path, text: str) -> str:
    """"folder", "file", "other", _DANGLING (a symbolic link whose target does not exist) or
    "missing"; a name the system refuses (too long, a NUL byte) is an option error, not an
    OSError."""
    try:
        if not path.exists():
            return _DANGLING if path.is_symlink() else "missing"
        return "folder" if path.is_dir() else "file" if path.is_file() else "other"
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text[:200]}: not a usable path ({exc})") from None


def _dangling(text: str, link: Path) -> argparse.ArgumentTypeError:
    where = "" if link == Path(text) else f"{link} "
    return argparse.ArgumentTypeError(f"{text}: {where}is a symbolic link to "
                                      f"{os.readlink(link)}, which does not exist")


def existing_file(text: str) -> Path:
    if _kind(_path(text), text) != "file":
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return Path(text)


def _existing_folder(text: str) -> Path:
    path = _path(text)
    if _kind(path, text) != "folder":
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return path


def training_run(text: str) -> Path:
    """--from RUN_DIR: a folder written by `harness train`."""
    path = _existing_folder(text)
    for name in (METRICS_FILE, SPEC_FILE, FINAL_WEIGHTS_FILE):
        if not (path / name).is_file():
            raise argparse.ArgumentTypeError(f"{text}: not a `harness train` run folder "
                                             f"({name} is missing)")
    return path


def matrix_run(text: str) -> Path:
    """RUN_DIR of `harness retime`: a folder written by `harness run`."""
    path = _existing_folder(text)
    if not (path / RUN_FILE).is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a `harness run` folder ({RUN_FILE} is "
                                         "missing)")
    return path


def run_results(text: str) -> Path:
    """RUN_DIR of `harness report` and `harness compare`: a folder written by `harness run`
    (its run.json), or one holding job folders (jobs/: a copy of some of a run's jobs)."""
    path = _existing_folder(text)
    if (path / RUN_FILE).is_file() or (path / JOBS_DIR).is_dir():
        return path
    if (path / METRICS_FILE).is_file() and (path / SPEC_FILE).is_file():
        raise argparse.ArgumentTypeError(
            f"{text}: a `harness train` folder, not a run: `harness run --specs SPEC` makes a "
            "run folder to report on (a train folder goes to export, parity and bench --from)")
    raise argparse.ArgumentTypeError(f"{text}: not a `harness run` folder (neither "
                                     f"{RUN_FILE} nor {JOBS_DIR}/ in it)")


def checked(kind: Callable[[str], T], text: str, name: str) -> T:
    """`kind(text)` for a value checked after parsing (a positional argument whose options
    are checked first): its error as the UsageError `<name>: <value>: <what is allowed>`."""
    try:
        return kind(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{name}: {exc}") from None


def _nearest_existing(path: Path, text: str) -> Path:
    """The nearest existing folder above `path`, so `path` can be made there."""
    for parent in path.parents:
        kind = _kind(parent, text)
        if kind == _DANGLING:
            raise _dangling(text, parent)
        if kind != "missing":
            if kind != "folder":
                raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
            return parent
    raise argparse.ArgumentTypeError(f"{text}: no folder above it exists")


def _writable(folder: Path, text: str) -> None:
    """Write access to `folder`, tried (a folder made there and removed): a read-only file
    system, /proc (where even root cannot), another user's folder are said now, not as a
    traceback once the work is done. A full disk is left to the command, which says so in
    its own line (exit 3, harness.cli)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".harness-write-check-", dir=folder))
    except OSError as exc:
        if exc.errno not in FULL_DISK:
            raise argparse.ArgumentTypeError(
                f"{text}: cannot write in {folder} ({exc.strerror or exc})") from None


def folder(text: str) -> Path:
    """A folder that exists or can be created."""
    path = _path(text)
    kind = _kind(path, text)
    if kind == _DANGLING:
        raise _dangling(text, path)
    if kind not in ("folder", "missing"):
        raise argparse.ArgumentTypeError(f"{text}: exists and is not a folder")
    _nearest_existing(path, text)
    return path


def data_folder(text: str) -> Path:
    """--data-dir: a folder that exists (read-only is fine). A missing one is a typo said now,
    not a folder made and filled by a download (harness.data.datasets.may_download)."""
    path = folder(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder (the datasets' folder; make "
                                         "it first to download them into it with --download)")
    return path


def output_folder(text: str) -> Path:
    """A folder to write in (--out, --checkpoint): it, or the folder it will be made in, is
    writable."""
    path = folder(text)
    _writable(path if path.is_dir() else _nearest_existing(path, text), text)
    return path


def output_file(text: str) -> Path:
    """A file to write: not a folder, in a writable folder that exists or can be created."""
    path = _path(text)
    kind = _kind(path, text)
    if kind == "folder":
        raise argparse.ArgumentTypeError(f"{text}: is a folder; expected a file name")
    if kind == _DANGLING:
        raise _dangling(text, path)
    _writable(_nearest_existing(path, text), text)
    return path


def set_override(text: str) -> str:
    """--set PATH=V1,V2: the syntax and values now; the path against each spec when the run
    is planned (before any job)."""
    try:
        parse_set(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--set ")) from None
    return text


positive_int = integer(1)
seed = integer(0, MAX_SEED)
threads = integer(1, MAX_THREADS)
batch_size = integer(1, MAX_BATCH_SIZE)
opset = integer(MIN_OPSET, DEFAULT_OPSET)
runs = integer(1, MAX_RUNS)
warmup = integer(0, MAX_RUNS)
seconds = number(0, MAX_SECONDS)

# The checks harness.run.options' RUN_OPTIONS name, of a value or of each item of a list.
CHECKS: dict[str, Callable[[str], object]] = {
    "str": str, "positive_int": positive_int, "seed": seed, "threads": threads,
    "batch_size": batch_size, "opset": opset, "runs": runs, "seconds": seconds,
    "fraction": number(0, 1), "training_limit": limit("training"), "test_limit": limit("test"),
    "data_folder": data_folder, "set_override": set_override}
