"""A warm job server: one process per framework (and local worker) that imports the framework
once and forks a fresh process for each job, so jobs stop paying the interpreter's start and
the framework's imports. Each job still runs in a process of its own (a crash or a leak stays
in it) and times its epochs and latency inside it, as a freshly started one does.

    python -m harness.run.job_server BACKEND FD

FD is a SOCK_SEQPACKET socket to the driver (harness.run.executors.warm). Each request is a
job_input (harness.run.job_process) plus its `work` folder, with the write end of the job's
output pipe attached; the server answers {"pid": N} once the job's process runs and {"exit":
STATUS} when it ends, one job at a time. The server never touches CUDA (a process forked after
CUDA is initialised cannot use it), and it dies with the driver, its jobs with it. Ctrl-C ends
it at once, even mid-import; a job takes Ctrl-C as a freshly started job process does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from harness.backends import REGISTRY
from harness.backends.isolation import die_with_parent
from harness.backends.preload import import_frameworks, warm_up
from harness.run.job_process import run_given

MAX_REQUEST_BYTES = 1 << 22  # a job and its spec's YAML
# Backends whose framework imports leave a process that forks cleanly (checked: a forked child
# trains, exports and times; BackendInfo.fork_safe); jobs of other backends start in a new
# interpreter.
FORK_SAFE_BACKENDS = frozenset(name for name, info in REGISTRY.items() if info.fork_safe)


def _job(request: dict[str, Any], output: int, driver: socket.socket, server: int
         ) -> NoReturn:
    """In the process forked from `server` (its pid): the job's output into its pipe, then
    the job."""
    code = 2
    try:
        die_with_parent(server)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        driver.close()
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        code = run_given(request, Path(request["work"]), time.time())
    except BaseException:  # noqa: BLE001 - whatever happens, this process ends here
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(backend: str, driver: socket.socket) -> None:
    """Import `backend`'s framework, then run the driver's jobs until it closes the socket."""
    import_frameworks(backend)
    warm_up(backend)
    print(f"job server for {backend}: ready", flush=True)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(driver, MAX_REQUEST_BYTES, 1)
        except ConnectionError:
            return
        if not message:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            _job(json.loads(message), fds[0], driver, server)
        os.close(fds[0])
        driver.send(json.dumps({"pid": pid}).encode())
        _, status = os.waitpid(pid, 0)
        driver.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C reaches the terminal's whole process group, this server too. It has nothing to
    # save, so it ends at once: Python's own handler would raise KeyboardInterrupt only when
    # the framework's import returns to Python code, seconds later.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    backend, fd = (argv or sys.argv[1:])[:2]
    serve(backend, socket.socket(fileno=int(fd)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
