"""A backend declares itself (its folder's info.py): the registry collects it without loading a
framework, and every table keyed by backend name reads it from there."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import backends
from harness.backends import BACKENDS, REGISTRY, BackendInfo, preload
from harness.report.figures import backend_name
from harness.report.plots import backend_color

FAKE = BackendInfo(name="fake", label="Fake on NumPy", framework="Fake 1 on NumPy",
                   color="#123456", module="fake_backend", cls="FakeBackend", extra="fake",
                   frameworks=("fake_framework",), preload=("fake_backend_steps",),
                   warm_up="fake_backend_steps")


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """FAKE registered, its steps' module on the path (it writes what its warm_up got)."""
    (tmp_path / "fake_backend_steps.py").write_text(
        "import pathlib\n"
        "def warm_up(opset):\n"
        f"    pathlib.Path({str(tmp_path / 'warmed')!r}).write_text(str(opset))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_backend_steps", raising=False)
    backends.register(FAKE)
    yield tmp_path
    del REGISTRY[FAKE.name]


def test_a_registered_backend_is_in_every_table(fake: Path) -> None:
    assert "fake" in backends.backend_names()
    assert backend_color("fake") == "#123456"
    assert backend_name("fake") == "Fake on NumPy"
    assert backends.not_installed("fake") == (
        "backend 'fake' needs fake_framework, not installed; install it with: "
        "pip install -e '.[fake]'")
    preload.import_frameworks("fake")
    assert "fake_backend_steps" in sys.modules
    preload.warm_up("fake", opset=17)
    assert (fake / "warmed").read_text() == "17"


def test_each_folder_declares_its_backend() -> None:
    assert [info.name for info in REGISTRY.values()] == ["keras", "keras-jax", "keras-torch",
                                                         "torch"]
    for folder, info in zip(BACKENDS, REGISTRY.values(), strict=True):
        assert info.module == f"harness.backends.{folder}"
        assert sys.modules[f"harness.backends.{folder}.info"].INFO is info
    assert backends.reference_backend() == "torch"
    assert backend_name("torch") == "PyTorch" and backend_name("other") == "other"
    assert backend_color("keras") == "#d62728"


def test_the_registry_imports_no_framework() -> None:
    code = ("import sys, json; import harness.backends, harness.backends.preload, "
            "harness.run.options; "
            "print(json.dumps([m for m in ('tensorflow', 'torch', 'jax', 'keras') "
            "if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert json.loads(result.stdout) == []
