"""Keep what a framework's native code prints while it loads off the user's terminal.

TensorFlow writes C++ log lines straight to the process's stderr as it imports and finds its
devices, before any Python logging applies ("All log messages before absl::InitializeLog() is
called...", "Could not find cuda drivers", a cuInit error on a machine without a GPU). On a
terminal they go to a log file instead; where stderr is a file or a pipe (a `harness run` job's
job.log, CI) they stay where they are, and HARNESS_VERBOSE=1 keeps them on the terminal too.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VERBOSE_VARIABLE = "HARNESS_VERBOSE"


def framework_log(backend: str) -> Path:
    """Where backend `backend`'s load-time output goes (the last load's)."""
    return Path(tempfile.gettempdir()) / f"harness-{backend}-framework.log"


def _redirect_wanted() -> bool:
    if os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0"):
        return False
    try:
        return os.isatty(2)
    except OSError:
        return False


@contextmanager
def native_output_to_log(backend: str, wanted: bool | None = None) -> Iterator[Path | None]:
    """While the block runs, file descriptor 2 writes to framework_log(backend) (yielded), or
    nothing changes (None yielded) where it is not a terminal (`wanted` overrides the check)."""
    if not (_redirect_wanted() if wanted is None else wanted):
        yield None
        return
    log = framework_log(backend)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log, "wb") as target:
            os.dup2(target.fileno(), 2)
            try:
                yield log
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
