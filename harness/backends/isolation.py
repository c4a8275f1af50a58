"""A backend in a process of its own.

Keras fixes its backend at its first import, so a process holds one Keras backend
(harness.backends.keras_common). A command that needs several (`harness parity`, the tests and
benchmarks that compare all backends, Keras on JAX's export through Keras on TensorFlow) runs
each backend this process cannot load in a worker: a fresh interpreter that keeps its framework
loaded from one call to the next.

    python -m harness.backends.isolation REQUEST_FD RESPONSE_FD

The worker reads pickled calls (module name, function name, arguments) from one pipe and
writes each result, or the exception with its traceback, to the other; its own stdout and
stderr are the parent's. Functions are named, not pickled: pickling a function imports its
module in the sending process, which a module that loads another Keras backend must not be.
The worker dies with its parent (die_with_parent), as every long-lived child of the harness
does.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import pickle
import signal
import subprocess
import sys
import traceback
from functools import partial
from typing import Any, BinaryIO

from harness.backends import REGISTRY, not_installed
from harness.backends.base import KerasBackendConflict


def conflict(name: str) -> str | None:
    """Why backend `name` cannot run in this process (its Keras backend is not the one keras
    was loaded with here), or None. Loads the backend's framework here when it can; a missing
    framework is None too (`get_backend` says what to install)."""
    if not_installed(name):
        return None
    try:
        importlib.import_module(REGISTRY[name].module)
    except KerasBackendConflict as exc:
        return str(exc)
    except ImportError:
        return None
    return None


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """In a child, before it execs (a Popen preexec_fn) or right after a fork: have the
    kernel kill it when `parent`, its parent's pid, ends, however that ends (kill -9 too), so
    no orphan keeps writing into a run folder (a dead run's export worker wrote model.onnx
    into it seconds later). The signal comes when the parent *thread* that started the child
    ends: start long-lived children from the main thread. Linux only; elsewhere a child
    outlives a killed parent."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the signal was set: nobody would send it
        os._exit(1)


class WorkerError(RuntimeError):
    """The worker's traceback, as the cause of an exception re-raised from a worker call."""


class BackendProcess:
    """One worker process; `call` runs `module.function(*args, **kwargs)` there and returns
    its result, or raises its exception here (caused by a WorkerError with the worker's
    traceback). A worker that dies raises RuntimeError, never hangs."""

    def __init__(self) -> None:
        request_read, self._request_fd = os.pipe()
        self._response_fd, response_write = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(request_read), str(response_write)],
            pass_fds=(request_read, response_write), preexec_fn=partial(die_with_parent,
                                                                        os.getpid()))
        os.close(request_read)
        os.close(response_write)
        self._requests = os.fdopen(self._request_fd, "wb")
        self._responses = os.fdopen(self._response_fd, "rb")
        _send(self._requests, list(sys.path))  # the worker imports what this process can

    def call(self, module: str, function: str, /, *args: Any, **kwargs: Any) -> Any:
        self.send(module, function, *args, **kwargs)
        return self.receive(f"{module}.{function}")

    def send(self, module: str, function: str, /, *args: Any, **kwargs: Any) -> None:
        """Start a call without waiting for it (`receive` gets its answer): several workers
        can work at once."""
        _send(self._requests, (module, function, args, kwargs))

    def receive(self, what: str = "the call") -> Any:
        """The answer to the call `send` started, or its exception raised here."""
        try:
            ok, value, worker_traceback = pickle.load(self._responses)
        except EOFError:
            code = self._process.wait()
            raise RuntimeError(f"the worker process for {what} exited with status {code} "
                               "before answering") from None
        if ok:
            return value
        raise value from WorkerError(worker_traceback)

    def close(self) -> None:
        self._requests.close()  # the worker ends at the end of its requests
        self._process.wait()
        self._responses.close()

    def __enter__(self) -> BackendProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _send(stream: BinaryIO, value: Any) -> None:
    pickle.dump(value, stream)
    stream.flush()


def _answer(request: tuple[str, str, tuple[Any, ...], dict[str, Any]]) -> tuple[Any, ...]:
    module, function, args, kwargs = request
    try:
        return True, getattr(importlib.import_module(module), function)(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
        text = traceback.format_exc()
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001 - an exception that cannot travel is described
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        return False, exc, text


def serve(requests: BinaryIO, responses: BinaryIO) -> None:
    """Answer calls until the parent closes its end."""
    sys.path[:] = pickle.load(requests)
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        _send(responses, _answer(request))


if __name__ == "__main__":
    with os.fdopen(int(sys.argv[1]), "rb") as inbox, os.fdopen(int(sys.argv[2]), "wb") as outbox:
        serve(inbox, outbox)
