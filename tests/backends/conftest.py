"""Fixtures of the backend tests: Keras on TensorFlow and PyTorch, built once per module (each
test module skips itself first when the framework is not installed)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def keras_backend() -> Any:
    from harness.backends import get_backend

    return get_backend("keras")


@pytest.fixture(scope="module")
def torch_backend() -> Any:
    from harness.backends import get_backend

    return get_backend("torch")
