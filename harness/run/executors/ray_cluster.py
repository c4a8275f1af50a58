"""Jobs as Ray tasks: on a cluster (`--ray-address auto|ray://HOST:PORT`, or $RAY_ADDRESS) or a
local one started for the run. Each task asks for the CPUs (the job's --threads, else 1) and
the GPU it needs; Ray places it, and the worker runs the job in its own process, pinned to
cores no other job on that machine holds (harness.run.executors.ray_task). The job's folder
comes back to the driver, which puts it into the run folder as a local job's would be.

A worker lost mid-job (killed, out of memory, its machine gone) is retried by Ray up to
`max_retries` times; then the job is recorded as failed, and a later run retries it.

Whoever reaches a Ray cluster's ports can run code on it, so the local cluster listens on the
loopback interface only, with no dashboard. A cluster given by address is the user's to keep on
a trusted network.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.records.models import JobRecord
from harness.run.executors import ExecutorUnavailable, JobEvents
from harness.run.executors.ray_task import run_job_task, unpack
from harness.run.folder import finish_job, fresh_partial_dir, spec_text
from harness.run.job import Job, Placement

INSTALL_HINT = 'install it with: pip install -e ".[ray]"'
# Ray's switch for a one-machine cluster (its default on macOS and Windows): the node's address
# is the loopback one, so every process of a cluster started here listens on it alone. Read
# when Ray is imported.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _is_local(address: str | None) -> bool:
    """Whether the run starts a Ray cluster of its own (no address given, none in the
    environment)."""
    return address is None and not os.environ.get("RAY_ADDRESS")


def _short(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, max_retries: int = 2,
                 keep_models: bool = False, cpus: int = 1, gpus: int = 0,
                 command: Sequence[str] | None = None) -> None:
        """`command`: the job process's command less its WORK_DIR (default: job_command),
        as the workers run it."""
        if _is_local(address):
            os.environ[LOCAL_ONLY_ENV] = "0"
        try:
            import ray
        except ImportError:
            raise ExecutorUnavailable(
                f"--executor ray: Ray is not installed; {INSTALL_HINT}") from None
        self.ray, self.address, self.max_retries = ray, address, max_retries
        self.keep_models, self.cpus, self.gpus, self.command = keep_models, cpus, gpus, command
        self._started_here = False
        self.description = (f"Ray: each job a task of {cpus} CPU(s)"
                            + (f" and {gpus} GPU" if gpus else "")
                            + f", retried up to {max_retries} time(s) if its worker is lost")

    def _check_loopback(self) -> None:
        """Refuse to start a local cluster that would listen on every interface: Ray was
        imported before LOCAL_ONLY_ENV was set (by the code that runs this executor)."""
        node = self.ray.util.get_node_ip_address()
        try:
            loopback = ipaddress.ip_address(node).is_loopback
        except ValueError:  # a host name: not known to be loopback
            loopback = False
        if not loopback:
            raise ExecutorUnavailable(
                f"--executor ray: a local Ray cluster would listen on {node}, not on loopback "
                f"only (Ray was imported before {LOCAL_ONLY_ENV}=0 was set); set it in the "
                "environment, or give --ray-address")

    def _connect(self) -> None:
        if self.ray.is_initialized():
            return
        local = _is_local(self.address)
        options: dict[str, Any] = {"include_dashboard": False} if local else {}
        if local:
            self._check_loopback()
        try:
            self.ray.init(address=self.address, log_to_driver=False,
                          logging_level=logging.ERROR, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or os.environ.get("RAY_ADDRESS") or "a new local cluster"
            raise ExecutorUnavailable(f"--ray-address {where}: cannot start or reach a Ray "
                                      f"cluster: {_short(exc)}") from None
        self._started_here = True

    @property
    def slots(self) -> int:
        self._connect()
        return max(int(self.ray.cluster_resources().get("CPU", 1) // self.cpus), 1)

    def _finish(self, run_dir: Path, job: Job, ref: Any) -> JobRecord:
        work = fresh_partial_dir(run_dir, job.job_id)
        try:
            lost, data = self.ray.get(ref)
            unpack(data, work)
        except self.ray.exceptions.RayError as exc:
            lost = (f"lost on Ray after {self.max_retries + 1} attempt(s) (--ray-retries "
                    f"{self.max_retries}): {_short(exc)}")
        except (tarfile.TarError, ValueError) as exc:
            lost = f"the job's folder sent back by Ray cannot be read: {_short(exc)}"
        return finish_job(run_dir, job, lost, Placement(executor="ray"))

    def run(self, run_dir: Path, jobs: Sequence[Job], events: JobEvents) -> None:
        if not jobs:
            return
        self._connect()
        task = self.ray.remote(run_job_task).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries,
            retry_exceptions=False)
        refs = {task.remote(job.record(), spec_text(run_dir, job), self.cpus, self.keep_models,
                            self.command): job for job in jobs}
        try:
            while refs:
                ready, _ = self.ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    job = refs.pop(ref)
                    events.finished(job, self._finish(run_dir, job, ref))
        except BaseException:  # Ctrl-C: stop what is still queued or running
            for ref in refs:
                self.ray.cancel(ref, force=True)
            raise
        finally:
            if self._started_here:
                self.ray.shutdown()
                self._started_here = False
