"""The driver's side of warm job servers (harness.run.job_server): one per framework and local
worker, started when its first job comes, pinned as the worker is, and restarted if it ends.
Their own output (the framework's import-time notices) goes to RUN_DIR/servers/."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from harness.records import folders
from harness.records.folders import JobFolder
from harness.run.executors.child import prepare_child
from harness.run.job import Job, Placement
from harness.run.job_process import job_input

SERVER_MODULE = "harness.run.job_server"


class JobServer:
    """A warm job server for one backend, on `placement`'s cores."""

    def __init__(self, backend: str, placement: Placement, log_file: Path) -> None:
        self.log_file = log_file
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", SERVER_MODULE, backend, str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=partial(prepare_child, os.getpid(), placement.cpus))
        theirs.close()
        self.socket = ours
        self.serving = False  # it has answered a request: its framework is imported

    def alive(self) -> bool:
        return self.process.poll() is None

    def receive(self) -> dict[str, Any] | None:
        """The server's next answer; None when it has ended."""
        try:
            data = self.socket.recv(4096)
        except ConnectionError:
            return None
        return json.loads(data) if data else None

    def start(self, job: Job, spec_text: str, placement: Placement, work: Path,
              checkpoint: Path) -> WarmJob:
        request = {**job_input(job, spec_text, placement, checkpoint), "work": str(work)}
        read_end, write_end = os.pipe()
        log = open(JobFolder(work).log, "w", encoding="utf-8")  # noqa: SIM115 - WarmJob
        try:
            socket.send_fds(self.socket, [json.dumps(request).encode()], [write_end])
            reply = self.receive()
        except OSError:  # the server has ended
            reply = None
        finally:
            os.close(write_end)  # the job's process holds it now, or nobody does
        pid = reply.get("pid") if reply else None
        self.serving = self.serving or pid is not None
        return WarmJob(job, placement, work, self, pid,
                       os.fdopen(read_end, "r", encoding="utf-8", errors="replace"), log)

    def close(self) -> None:
        """End the server: at the end of its socket once it serves; at once while it still
        imports its framework, since it reads its socket only after that (Ctrl-C early in a
        run waited seconds for it)."""
        self.socket.close()
        if not self.serving:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class WarmJob:
    """A job forked by a job server, as JobProcess is for a freshly started one."""

    job: Job
    placement: Placement
    work: Path
    server: JobServer
    pid: int | None  # None: the server ended before the job started
    output: TextIO
    log: TextIO

    def lines(self) -> Iterator[str]:
        with self.log, self.output:
            for line in self.output:
                self.log.write(line)
                self.log.flush()
                yield line

    def wait(self) -> str | None:
        reply = self.server.receive() if self.pid is not None else None
        status = reply.get("exit") if reply else None
        if status == 0:
            return None
        if status is None:
            return (f"the job server ended during the job (see "
                    f"{folders.SERVERS_DIR}/{self.server.log_file.name})")
        return f"the job's process exited with status {status} (see {folders.JOB_LOG_FILE})"

    def kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):  # it has ended already
                os.kill(self.pid, signal.SIGKILL)


class ServerPool:
    """The warm job servers of a run: one per (local worker, backend)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.servers: dict[tuple[int, str], JobServer] = {}

    def start(self, slot: int, job: Job, spec_text: str, placement: Placement,
              work: Path) -> WarmJob:
        key = (slot, job.backend)
        server = self.servers.get(key)
        if server is None or not server.alive():
            if server is not None:
                server.close()
            log_file = self.run_dir / folders.SERVERS_DIR / f"{job.backend}-worker{slot}.log"
            server = self.servers[key] = JobServer(job.backend, placement, log_file)
        return server.start(job, spec_text, placement.model_copy(update={"warm": True}), work,
                            folders.checkpoint_dir(self.run_dir, job.job_id))

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()
