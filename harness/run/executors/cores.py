"""Cores for parallel jobs: disjoint sets, so jobs side by side do not steal each other's cores
and each job's threads (harness.measure.environment.thread_budget: the cores it may use) match its
set.

Cores are handed out in topology order (package, physical core, logical CPU), so a set of two
on a machine with SMT is one physical core's two threads rather than halves of two cores.
"""

from __future__ import annotations

import fcntl
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from harness.errors import UsageError
from harness.measure.environment import gpus

_TOPOLOGY = Path("/sys/devices/system/cpu")


def _topology_key(cpu: int) -> tuple[int, int, int]:
    def read(name: str) -> int:
        try:
            return int((_TOPOLOGY / f"cpu{cpu}" / "topology" / name).read_text())
        except (OSError, ValueError):
            return cpu
    return read("physical_package_id"), read("core_id"), cpu


def usable_cpus() -> list[int]:
    """The logical CPUs this process may run on, in topology order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0), key=_topology_key)
    return list(range(os.cpu_count() or 1))


def split_cores(workers: int, threads: int | None) -> list[tuple[int, ...]]:
    """`workers` disjoint core sets of `threads` cores each (default: an equal share)."""
    cpus = usable_cpus()
    per_worker = threads or len(cpus) // workers
    if per_worker == 0:
        raise UsageError(f"--workers {workers}: more workers than the {len(cpus)} cores this "
                         f"process may use; give --workers {len(cpus)} or fewer")
    if per_worker * workers > len(cpus):
        raise UsageError(f"--workers {workers} with --threads {threads}: {workers * threads} "
                         f"cores, more than the {len(cpus)} this process may use; give fewer "
                         "workers or threads")
    return [tuple(cpus[i * per_worker:(i + 1) * per_worker]) for i in range(workers)]


def visible_gpus() -> list[str]:
    """GPU ids a job can be given in CUDA_VISIBLE_DEVICES: those already visible to this
    process, else every GPU nvidia-smi lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [item.strip() for item in visible.split(",") if item.strip()]
    return [str(index) for index in range(len(gpus() or []))]


def split_gpus(workers: int) -> list[str | None]:
    """One GPU per worker; no GPU pinning where none is visible (jobs record CUDA as
    unavailable, as they do without workers)."""
    ids = visible_gpus()
    if not ids:
        return [None] * workers
    if len(ids) < workers:
        raise UsageError(f"--workers {workers}: the run uses CUDA (--device or --providers) and "
                         f"{len(ids)} GPU(s) are visible; give --workers {len(ids)} or fewer, "
                         "so each job has a GPU of its own")
    return ids[:workers]


def _unsafe(folder: Path) -> str | None:
    """Why the lock folder is not this user's alone, or None. Its name is predictable, so
    another user could have made it first (or a link to their folder) to hold our cores."""
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "not a folder"
    if info.st_uid != os.getuid():
        return f"owned by uid {info.st_uid}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _lock_dir() -> Path | None:
    """The folder of the per-core lock files, made private to this user (mode 0700); None,
    with a line on stderr, where the folder there cannot be trusted."""
    folder = Path(tempfile.gettempdir()) / f"harness-cores-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        print(f"harness: cannot make {folder}: {exc.strerror}; jobs here run unpinned",
              file=sys.stderr)
        return None
    problem = _unsafe(folder)
    if problem:
        print(f"harness: {folder} is {problem}, not a private folder of this user; jobs here "
              "run unpinned (remove it to pin them again)", file=sys.stderr)
        return None
    return folder


def _locked(folder: Path, cpu: int, held: ExitStack) -> bool:
    """Take core `cpu`'s lock (kept until `held` closes); False when another job holds it."""
    try:  # O_NOFOLLOW: a link in place of a lock file is refused, not followed
        fd = os.open(folder / f"cpu{cpu}.lock",
                     os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    held.callback(os.close, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def claim_cores(count: int) -> Iterator[tuple[int, ...] | None]:
    """`count` cores of this machine no other job of this user holds (a flock per core, which
    the kernel drops when the holder ends, however it ends); None when there are not enough
    free ones (a scheduler that counts more CPUs than the machine has) or no private folder
    for the locks: the job is not pinned."""
    folder = _lock_dir()
    if folder is None:
        yield None
        return
    with ExitStack() as held:
        claimed: list[int] = []
        for cpu in usable_cpus():
            if len(claimed) == count:
                break
            if _locked(folder, cpu, held):
                claimed.append(cpu)
        if len(claimed) < count:
            held.close()  # give back a partial claim at once
            yield None
        else:
            yield tuple(claimed)
