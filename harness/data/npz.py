"""Your own arrays: an .npz file (`input.dataset: {npz: PATH}` or `--data PATH`), read and
checked before any training.

The file holds `x_train, y_train, x_test, y_test` (other keys are ignored). Each x array is
(N, *input shape) (or N samples of the same number of values, reshaped row-major as the
28x28 images are for a flat input), of integers or floats: prepare() casts it to float32 and
divides it by `input.scale` whatever its dtype (uint8 pixels with the default 255; floats
already scaled with `scale: 1.0`). Each y array is N integer labels in [0, classes) or N
one-hot rows of `classes` values (0 and 1, one 1 a row); classes is the model's output size.

Every problem is a `BadNpz` (a UsageError: one line naming the file, the key, the value and
what is allowed; exit 2). The array headers are read first, from the zip's members, so a
wrong key, dtype or shape is refused before any array is loaded; object arrays are never
unpickled (allow_pickle=False).
"""

from __future__ import annotations

import zipfile
import zlib
from functools import lru_cache
from math import prod
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

from harness.errors import UsageError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_X_KINDS = "uif"  # unsigned, signed integers, floats
_LABEL_KINDS = "ui"
_ONE_HOT_KINDS = "uifb"
# what reading a damaged or truncated archive raises (zipfile, zlib, numpy's header parser)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError)


class BadNpz(UsageError):
    """An .npz the harness cannot train on; `str()` is its one line."""


class Header(NamedTuple):
    shape: tuple[int, ...]
    dtype: np.dtype


class NpzArrays(NamedTuple):
    """The four arrays as given, but labels: int64 class indices."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _fail(path: Path, where: str, what: str) -> BadNpz:
    return BadNpz(f"{path}: {where}: {what}" if where else f"{path}: {what}")


def _read_header(handle: IO[bytes]) -> Header:
    version = np.lib.format.read_magic(handle)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, _, dtype = read(handle)
    return Header(tuple(int(d) for d in shape), np.dtype(dtype))


def read_headers(path: Path) -> dict[str, Header]:
    """The four arrays' shapes and dtypes, from their .npy headers alone."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            headers = {}
            for key in NPZ_KEYS:
                if f"{key}.npy" not in names:
                    found = sorted(n.removesuffix(".npy") for n in names)
                    raise _fail(path, key, f"missing; an .npz needs {', '.join(NPZ_KEYS)} "
                                           f"(it holds {', '.join(found) or 'nothing'})")
                try:
                    with archive.open(f"{key}.npy") as handle:
                        headers[key] = _read_header(handle)
                except _READ_ERRORS as exc:
                    raise _fail(path, key, f"cannot be read: the file is damaged or "
                                           f"truncated, or not a .npy array ({exc})") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(path, "", f"not an .npz (zip) file, or truncated ({exc}); save one with "
                              "numpy.savez(path, x_train=..., y_train=..., x_test=..., "
                              "y_test=...)") from None
    return headers


def check_headers(path: Path, headers: dict[str, Header], input_shape: tuple[int, ...],
                  classes: int | None) -> None:
    """Dtypes and shapes against the spec's input and classes (None: one-hot rows of any
    width)."""
    for split in ("train", "test"):
        x_key, y_key = f"x_{split}", f"y_{split}"
        x, y = headers[x_key], headers[y_key]
        for key, header in ((x_key, x), (y_key, y)):
            if header.dtype.hasobject:
                raise _fail(path, key, "an array of Python objects, which is never unpickled "
                                       "(allow_pickle=False); save numbers")
            if not header.shape or header.shape[0] == 0:
                raise _fail(path, key, f"empty (shape {header.shape}); give at least one "
                                       "sample")
        if x.dtype.kind not in _X_KINDS:
            raise _fail(path, x_key, f"dtype {x.dtype}; expected integers (uint8 pixels) or "
                                     "floats")
        sample = x.shape[1:]
        if sample != input_shape and prod(sample) != prod(input_shape):
            raise _fail(path, x_key, f"shape {x.shape}: samples of shape {sample}, the spec's "
                                     f"input.shape is {list(input_shape)} "
                                     f"({prod(input_shape)} values a sample)")
        if y.shape[0] != x.shape[0]:
            raise _fail(path, y_key, f"{y.shape[0]} labels for {x.shape[0]} samples in "
                                     f"{x_key}; give one label a sample")
        _check_label_header(path, y_key, y, classes)


def _check_label_header(path: Path, key: str, header: Header, classes: int | None) -> None:
    if len(header.shape) == 1:
        if header.dtype.kind not in _LABEL_KINDS:
            raise _fail(path, key, f"dtype {header.dtype}; labels are integers (or one-hot "
                                   "rows, shape (N, classes))")
        return
    width = f"{classes}, the model's output units" if classes else "classes"
    if len(header.shape) != 2 or (classes is not None and header.shape[1] != classes):
        raise _fail(path, key, f"shape {header.shape}; expected (N,) integer labels or (N, "
                               f"{width}) one-hot rows")
    if header.dtype.kind not in _ONE_HOT_KINDS:
        raise _fail(path, key, f"dtype {header.dtype}; one-hot rows hold numbers")


def _labels(path: Path, key: str, y: np.ndarray, classes: int | None) -> np.ndarray:
    """int64 class indices of integer labels or one-hot rows, checked."""
    if y.ndim == 2:
        valid = np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1)
        if not valid.all():
            row = int(np.argmin(valid))
            raise _fail(path, key, f"row {row} is {y[row].tolist()!r}, not one-hot (0s and a "
                                   "single 1)")
        return y.argmax(axis=1).astype(np.int64)
    upper = classes if classes is not None else np.iinfo(np.int64).max
    bad = (y < 0) | (y >= upper)
    if bad.any():
        index = int(np.argmax(bad))
        allowed = f"0 to {classes - 1} ({classes} classes: the model's output units)" \
            if classes is not None else "0 or more"
        raise _fail(path, key, f"label {y[index]} at index {index}; labels are {allowed}")
    return y.astype(np.int64)


def _load(path: Path, key: str, archive: np.lib.npyio.NpzFile) -> np.ndarray:
    try:
        return archive[key]
    except _READ_ERRORS as exc:
        raise _fail(path, key, f"cannot be read: the file is damaged or truncated ({exc})"
                    ) from None


def _inputs(path: Path, key: str, x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        index = np.unravel_index(int(np.argmin(np.isfinite(x))), x.shape)
        raise _fail(path, key, f"{x[index]} at index {list(map(int, index))}; values must be "
                               "finite (no NaN or inf)")
    return x.reshape((len(x), *input_shape))


@lru_cache(maxsize=2)
def _read(path: str, sha256: str, input_shape: tuple[int, ...],
          classes: int | None) -> NpzArrays:
    del sha256  # the cache key: a file rewritten in place is read again
    file = Path(path)
    check_headers(file, read_headers(file), input_shape, classes)
    try:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {key: _load(file, key, archive) for key in NPZ_KEYS}
    except _READ_ERRORS as exc:
        raise _fail(file, "", f"cannot be read: the file is damaged or truncated ({exc})"
                    ) from None
    for array in arrays.values():
        array.setflags(write=False)
    return NpzArrays(
        _inputs(file, "x_train", arrays["x_train"], input_shape),
        _labels(file, "y_train", arrays["y_train"], classes),
        _inputs(file, "x_test", arrays["x_test"], input_shape),
        _labels(file, "y_test", arrays["y_test"], classes),
    )


def read_npz(path: Path, sha256: str, input_shape: tuple[int, ...],
             classes: int | None) -> NpzArrays:
    """The checked arrays of the .npz (cached per process by path, content, shape, classes):
    x reshaped to (N, *input_shape) as given, labels as int64 indices. `classes`: the model's
    output size (None: labels not checked against it). Raises BadNpz."""
    return _read(str(path), sha256, tuple(input_shape), classes)
