"""What a backend's job steps import, imported ahead: a job times its imports apart from its
work, and a warm job server imports them once for many jobs (and warms up what each job's first
use would do again)."""

from __future__ import annotations

import contextlib
import importlib

from harness.backends import REGISTRY
from harness.backends.onnx_io import DEFAULT_OPSET


def import_frameworks(backend: str) -> None:
    """Import what the steps will (a missing framework is the train step's error to report)."""
    info = REGISTRY.get(backend)
    for module in (*(info.preload if info else ()), "onnx", "onnxruntime"):
        try:
            importlib.import_module(module)
        except ImportError:
            continue


def warm_up(backend: str, opset: int = DEFAULT_OPSET) -> None:
    """For a process that forks many jobs: do once what each job's first use would do again
    (its BackendInfo.warm_up: torch.onnx's first export). A failure here is left for the
    job's own step to report."""
    info = REGISTRY.get(backend)
    if info is None or info.warm_up is None:
        return
    with contextlib.suppress(Exception):  # the job's own step reports what fails here
        importlib.import_module(info.warm_up).warm_up(opset)
