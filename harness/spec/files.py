"""Files a spec refers to (a user's `.npz` data, imported initial weights): where they are and
what they hold.

A `FileRef`'s `path` is written relative to the spec's folder (or absolute); `parse_spec`
resolves it against the folder of the file it reads, so the spec can be re-read from anywhere:
`dump_spec` writes the resolved, absolute path (a run folder's copy of the spec then points
at the same file). The file is read when the spec is loaded, and its SHA-256 is checked against
the spec's (or filled in): the spec's hash holds the file's content, not where it lies.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

from pydantic import (
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from harness.spec.layers import StrictModel

SHA256_PATTERN = "^[0-9a-f]{64}$"
# parse_spec's validation context: the folder relative paths are read from
SPEC_DIR_CONTEXT = "spec_dir"
# model_dump's context for hashing: a FileRef is its content (sha256), wherever it lies
HASH_CONTEXT = "for_hash"

_HASHED: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256


def sha256_file(path: Path) -> str:
    """The file's SHA-256 (hex), cached per process by (resolved path, size, mtime), so a spec
    loaded again and again (each job, each export) reads a large file once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


class FileRef(StrictModel):
    """A file the spec depends on: its path and its SHA-256 (checked, or filled in at load)."""

    path: Annotated[str, Field(min_length=1, max_length=4096)]
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)] | None = None

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> FileRef:
        path = Path(self.path).expanduser()
        if not path.is_absolute():
            base = (info.context or {}).get(SPEC_DIR_CONTEXT)
            path = (Path(base) if base is not None else Path.cwd()) / path
        path = path.resolve()
        try:
            actual = sha256_file(path)
        except OSError as exc:
            why = "no such file" if not path.exists() else (exc.strerror or str(exc))
            raise ValueError(f"{path}: {why}; give the path of the file, relative to the "
                             "spec's folder or absolute") from None
        if self.sha256 is not None and actual != self.sha256:
            raise ValueError(f"{path}: the file's sha256 is {actual}, the spec says "
                             f"{self.sha256}: the file changed since the spec was written "
                             "(restore it, or remove sha256 from the spec to accept it)")
        # frozen model: set the resolved values once, here, at validation
        object.__setattr__(self, "path", str(path))
        object.__setattr__(self, "sha256", actual)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
              ) -> dict[str, object]:
        data = handler(self)
        if (info.context or {}).get(HASH_CONTEXT):
            field = type(self).model_fields["path"]
            data.pop(field.serialization_alias or field.alias or "path", None)
        return data

    @property
    def resolved(self) -> Path:
        return Path(self.path)
