"""Tests read the datasets from ../shared/data when it exists, so they never use the network."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

if "HARNESS_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["HARNESS_DATA_DIR"] = str(SHARED_DATA)


def cuda_available() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "PyTorch is not installed"
    if not torch.cuda.is_available():
        return False, "no usable CUDA device (torch.cuda.is_available() is False)"
    return True, ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    available, reason = cuda_available()
    if available:
        return
    skip = pytest.mark.skip(reason=f"gpu test: {reason}")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def backend_call() -> Iterator[Callable[..., Any]]:
    """`backend_call(name, function, *args, **kwargs)`: `function(*args, **kwargs)` here, or
    in a worker process holding backend `name` (one per backend, kept for the session) for a
    Keras backend other than `keras`: a process holds one Keras backend, and this one keeps
    Keras on TensorFlow for the tests that use it directly, whatever runs first. `function`
    must be a module-level function (the worker imports it by name); skips when the backend's
    framework is not installed."""
    from harness.backends import REGISTRY, not_installed
    from harness.backends.isolation import BackendProcess

    workers: dict[str, BackendProcess] = {}

    def call(name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        missing = not_installed(name)
        if missing:
            pytest.skip(missing)
        if name == "keras" or "keras" not in REGISTRY[name].frameworks:
            return function(*args, **kwargs)
        if name not in workers:
            workers[name] = BackendProcess()
        return workers[name].call(function.__module__, function.__qualname__, *args, **kwargs)

    yield call
    for worker in workers.values():
        worker.close()


# Keras on TensorFlow and PyTorch for the backend tests, built once per module (each test
# module skips itself first when the framework is not installed). Here, not in a conftest of
# their own: tests import this module as `conftest`, which a second one would shadow.
@pytest.fixture(scope="module")
def keras_backend() -> Any:
    from harness.backends import get_backend

    return get_backend("keras")


@pytest.fixture(scope="module")
def torch_backend() -> Any:
    from harness.backends import get_backend

    return get_backend("torch")
