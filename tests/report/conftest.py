"""A small but real RUN_DIR, built once per session with the real training and export code:
two specs x two backends, 2 epochs on 500 images, plus one job that failed at the export step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.measure.environment import utc_now
from harness.records import folders
from harness.records.io import write_json_atomic

from .fakes import BACKENDS, SPECS, add_failed_job, build_job


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("run")
    for spec in SPECS:
        for backend in BACKENDS:
            build_job(root, spec, backend)
    add_failed_job(root)
    write_json_atomic(root / folders.RUN_FILE, {"schema_version": 1, "kind": "run",
                                               "created_utc": utc_now(), "jobs": []})
    return root


@pytest.fixture()
def run_copy(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session run, for tests that change it."""
    return Path(shutil.copytree(run_dir, tmp_path / "run"))
