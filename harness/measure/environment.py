"""What a result was measured on: machine, versions, commit, time. No framework imports here."""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import os
import platform
import shutil
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import harness
from harness.measure.machine_load import load_average

# Distributions whose versions decide the numbers; recorded when installed.
TRACKED_PACKAGES = ("numpy", "tensorflow", "keras", "jax", "jaxlib", "torch", "onnx",
                    "onnxruntime", "onnxruntime-gpu", "tf2onnx", "onnxscript", "pydantic")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The instruction sets that decide CPU kernels' speed (oneDNN, XNNPACK, MLAS pick by them).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
               "amx_int8")


def cpu_flags() -> list[str]:
    """Which of SPEED_FLAGS the CPU reports (/proc/cpuinfo), in that order; [] elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in SPEED_FLAGS if flag in present]
    except OSError:
        pass
    return []


def virtual_machine() -> bool | None:
    """True when the CPU says it runs under a hypervisor; None where /proc/cpuinfo is absent."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return any(line.startswith("flags") and " hypervisor" in line for line in text.splitlines())


def memory_gib() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except (ImportError, OSError):
        return None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    """The harness checkout's commit (with '-dirty' if it has local changes), if it is one."""
    repo = Path(harness.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "harness",
                                "models"], check=True, capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def usable_cores() -> int:
    """The logical CPUs this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_budget(threads: int | None) -> int:
    """Compute threads every runtime gets (intra-op; inter-op is 1 where a runtime has it):
    `threads`, or by default every core this process may use, the same for every runtime."""
    return usable_cores() if threads is None else threads


def machine() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gib": memory_gib(),
        "cpu_flags": cpu_flags(),
        "virtual_machine": virtual_machine(),
        # when the record was written; each timing has its own load (harness.measure.machine_load)
        "load_average_1m": load_average(),
    }


@cache
def gpus() -> list[dict[str, str]] | None:
    """GPU models and driver as `nvidia-smi` reports them; None without nvidia-smi or when it
    fails (no driver). Cached: the answer does not change within a process."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             check=True, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [[part.strip() for part in line.split(",")] for line in out.splitlines() if line]
    return [{"name": row[0], "driver": row[-1]} for row in rows if len(row) >= 2]


@cache
def onnxruntime_build() -> dict[str, Any] | None:
    """CUDA/cuDNN as ONNX Runtime was built for them and the providers it offers; None when
    onnxruntime is not installed. Listed providers may still fail to load (see harness.ort)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    try:
        from onnxruntime.capi import build_and_package_info as build
    except ImportError:
        build = None
    return {
        "version": ort.__version__,
        "package": getattr(build, "package_name", None),
        "device": ort.get_device(),  # what the build targets ("GPU"), not what runs
        "cuda_version": getattr(build, "cuda_version", None),
        "cudnn_version": getattr(build, "cudnn_version", None),
        "available_providers": list(ort.get_available_providers()),
    }


def environment(backend_environment: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to tell two measurements apart: machine, packages, commit, backend,
    GPUs and the ONNX Runtime build."""
    return {
        "harness": harness.__version__,
        "commit": git_commit(),
        "machine": machine(),
        "packages": package_versions(),
        # copies: callers may edit the record, the cached answers must stay intact
        "gpu": copy.deepcopy(gpus()),
        "onnxruntime_build": copy.deepcopy(onnxruntime_build()),
        "backend": backend_environment or {},
    }
