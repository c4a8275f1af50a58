"""What a result was measured on: machine, versions, commit, time. No framework imports here."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import harness

# Distributions whose versions decide the numbers; recorded when installed.
TRACKED_PACKAGES = ("numpy", "tensorflow", "keras", "torch", "onnx", "onnxruntime",
                    "onnxruntime-gpu", "tf2onnx", "onnxscript", "pydantic")


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


def machine() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
    }


def environment(backend_environment: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to tell two measurements apart: machine, packages, commit, backend."""
    return {
        "harness": harness.__version__,
        "commit": git_commit(),
        "machine": machine(),
        "packages": package_versions(),
        "backend": backend_environment or {},
    }
