"""A file a spec names: resolved against the spec's folder, its sha256 checked or filled in."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.spec.files import HASH_CONTEXT, SPEC_DIR_CONTEXT, FileRef


def _file(folder: Path, data: bytes = b"weights") -> tuple[Path, str]:
    path = folder / "w.npz"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_relative_path_is_read_from_the_spec_folder_and_its_hash_filled_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, digest = _file(tmp_path)
    monkeypatch.chdir("/")
    ref = FileRef.model_validate({"path": "w.npz"}, context={SPEC_DIR_CONTEXT: tmp_path})
    assert ref.resolved == path.resolve()
    assert ref.sha256 == digest


def test_a_changed_file_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    path, digest = _file(tmp_path)
    path.write_bytes(b"other weights")
    with pytest.raises(ValidationError, match=f"the spec says {digest}: the file changed"):
        FileRef.model_validate({"path": str(path), "sha256": digest})


def test_a_missing_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"absent\.npz: no such file"):
        FileRef.model_validate({"path": "absent.npz"}, context={SPEC_DIR_CONTEXT: tmp_path})


def test_the_hash_dump_is_the_content_not_the_place(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _ = _file(tmp_path / "a")
    second, _ = _file(tmp_path / "b")
    refs = [FileRef.model_validate({"path": str(p)}) for p in (first, second)]
    hashed = [ref.model_dump(context={HASH_CONTEXT: True}) for ref in refs]
    assert hashed[0] == hashed[1] == {"sha256": refs[0].sha256}
    assert refs[0].model_dump()["path"] != refs[1].model_dump()["path"]
