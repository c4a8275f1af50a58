"""Result records: atomic JSON with the file mode a plain open() gives, and relative paths."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from harness.records.io import read_json, relative_path, write_json_atomic


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_file_mode_follows_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        path = write_json_atomic(tmp_path / "record.json", {"kind": "x", "value": 1.5})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)
    assert read_json(path) == {"kind": "x", "value": 1.5}


def test_replaces_atomically_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "record.json"
    write_json_atomic(path, {"n": float("nan"), "v": [1, 2]})
    write_json_atomic(path, {"n": 2})
    assert json.loads(path.read_text()) == {"n": 2}
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "record.json", {"n": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"n": object()})
    assert read_json(path) == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_relative_path_inside_and_outside_the_record_folder(tmp_path: Path) -> None:
    job = tmp_path / "run" / "jobs" / "a"
    job.mkdir(parents=True)
    assert relative_path(job / "model.onnx", job) == "model.onnx"
    assert relative_path(job, job) == "."
    assert relative_path(job / "sub" / "x.npz", tmp_path / "run") == "jobs/a/sub/x.npz"
    outside = tmp_path / "elsewhere" / "m.onnx"
    assert relative_path(outside, job) == str(outside.resolve())
    assert Path(relative_path(outside, job)).is_absolute()
