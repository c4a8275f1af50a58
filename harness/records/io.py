"""Result records: versioned JSON written atomically, so a crash never leaves half a file."""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

RESULT_SCHEMA_VERSION = 1


def _jsonable(value: Any) -> Any:
    """NaN/inf are not JSON: record them as null rather than writing invalid files."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def write_json_atomic(path: Path, payload: dict[str, Any]) -> Path:
    """Write JSON to a temporary file beside `path`, then rename it into place. The file is
    created like open() creates one (mode 0666 less the umask), not mkstemp's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(_jsonable(payload), handle, indent=2, sort_keys=False, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def relative_path(path: Path | str, base: Path | str) -> str:
    """How a record names a file: relative to `base`, the folder holding the record, when the
    file lies inside it (so the folder can be moved, copied or archived); absolute otherwise."""
    resolved, root = Path(path).resolve(), Path(base).resolve()
    if resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix()
    return str(resolved)


def read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
