"""What the harness leaves behind and trusts on a shared machine: the per-core lock folder is
private to its user, every long-lived child process dies with its parent, however the parent
ends (kill -9 too), and Ctrl-C does not wait for a warm job server's imports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from harness.run.executors.cores import claim_cores, usable_cpus
from harness.run.executors.warm import JobServer
from harness.run.job import Placement

GONE_WITHIN_S = 5.0


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tempfile.gettempdir() is `tmp_path`, so the lock folder is the test's own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _lock_folder(temp: Path) -> Path:
    return temp / f"harness-cores-{os.getuid()}"


def test_the_lock_folder_is_made_private(temp_dir: Path) -> None:
    with claim_cores(1) as claimed:
        assert claimed is not None
    folder = _lock_folder(temp_dir)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert [path.stat().st_mode & 0o777 for path in folder.iterdir()] == [0o600]


def test_a_link_in_place_of_the_lock_folder_is_not_followed(
        temp_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = temp_dir / "someone-elses"
    elsewhere.mkdir()
    _lock_folder(temp_dir).symlink_to(elsewhere)
    with claim_cores(1) as claimed:
        assert claimed is None  # the job runs unpinned
    assert not list(elsewhere.iterdir())
    assert "is a symbolic link, not a private folder" in capsys.readouterr().err


def test_a_lock_folder_others_can_write_is_not_used(
        temp_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _lock_folder(temp_dir)
    folder.mkdir()
    folder.chmod(0o777)
    with claim_cores(1) as claimed:
        assert claimed is None
    assert not list(folder.iterdir())
    assert "writable by others (mode 777)" in capsys.readouterr().err


def test_a_link_in_place_of_a_lock_file_is_not_followed(temp_dir: Path) -> None:
    folder, target = _lock_folder(temp_dir), temp_dir / "target"
    folder.mkdir(mode=0o700)
    for cpu in usable_cpus():
        (folder / f"cpu{cpu}.lock").symlink_to(target)
    with claim_cores(1) as claimed:
        assert claimed is None
    assert not target.exists()


# Each parent starts a long-lived child the harness's way, prints the child's pid, and waits.
BUSY_WORKER = """
from harness.backends.isolation import BackendProcess
worker = BackendProcess()
worker.send("time", "sleep", 120)  # busy, as an export worker mid-conversion is
print(worker._process.pid, flush=True)
"""
JOB_SERVER = """
import sys
from pathlib import Path
from harness.run.executors.warm import JobServer
from harness.run.job import Placement
server = JobServer("none", Placement(executor="local"), Path(sys.argv[1]) / "server.log")
print(server.process.pid, flush=True)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the parent-death signal and /proc are Linux's")


@LINUX_ONLY
@pytest.mark.parametrize("parent_code", [BUSY_WORKER, JOB_SERVER], ids=["isolation-worker",
                                                                       "job-server"])
def test_a_child_dies_with_its_parent_killed_by_sigkill(tmp_path: Path, parent_code: str
                                                         ) -> None:
    code = textwrap.dedent(parent_code) + "import time\ntime.sleep(120)\n"
    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None  # started with stdout=PIPE
        child = int(parent.stdout.readline())
        assert not _gone(child)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + GONE_WITHIN_S
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not _gone(child):
        os.kill(child, signal.SIGKILL)  # leave no orphan of the test behind
        pytest.fail(f"the child {child} outlived its parent by {GONE_WITHIN_S} s")


def _catches_sigint(pid: int) -> bool:
    """Whether the process has a handler of its own for SIGINT (Python's, by default)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:"))
                 .split()[1], 16)
    return bool(caught & 1 << (signal.SIGINT - 1))


@LINUX_ONLY
def test_ctrl_c_ends_a_job_server_at_once(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = JobServer("none", Placement(executor="local"), log)
    deadline = time.monotonic() + 60  # its interpreter and imports on a busy machine
    while "ready" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        # no handler of Python's, so Ctrl-C ends it even inside an import's C code
        assert "ready" in log.read_text() and not _catches_sigint(server.process.pid)
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=GONE_WITHIN_S) == -signal.SIGINT
    finally:
        server.close()
    assert "Traceback" not in log.read_text()


def test_closing_a_job_server_still_importing_does_not_wait_for_the_import(
        tmp_path: Path) -> None:
    pytest.importorskip("torch")  # seconds of imports and warm-up before it would serve
    server = JobServer("torch", Placement(executor="local"), tmp_path / "server.log")
    started = time.monotonic()
    server.close()
    assert server.process.returncode is not None
    assert time.monotonic() - started < GONE_WITHIN_S / 2
