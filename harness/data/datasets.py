"""MNIST and Fashion-MNIST: locate, download, verify (sha256), parse (IDX) and prepare arrays
(a user's .npz: harness.data.npz).

numpy only: every backend gets the same float32 inputs, int64 labels and per-epoch sample order.
Files live in `<data_dir>/<dataset>/<file>`; see `data_dir` for how the folder is chosen.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.data.npz import read_npz
from harness.errors import UsageError
from harness.spec.files import sha256_file
from harness.spec.schema import INPUT_SHAPES

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.spec.schema import InputSpec

ENV_VAR = "HARNESS_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 16
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049
_HW = (28, 28)


class DataError(RuntimeError):
    """A data file is missing, corrupted, unparsable or could not be downloaded."""


@dataclass(frozen=True)
class DataFile:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DatasetSource:
    """One dataset's four files (keyed by role, see `ROLES`) and mirror base URLs, in order."""

    name: str
    files: Mapping[str, DataFile]
    mirrors: tuple[str, ...]


def _files(sizes_and_hashes: list[tuple[int, str]]) -> dict[str, DataFile]:
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return {role: DataFile(name, sha, size)
            for role, name, (size, sha) in zip(ROLES, names, sizes_and_hashes, strict=True)}


DATASETS: dict[str, DatasetSource] = {
    "mnist": DatasetSource(
        name="mnist",
        files=_files([
            (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        ]),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": DatasetSource(
        name="fashion-mnist",
        files=_files([
            (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
        ]),
        mirrors=(
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",  # keras
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # torchvision
        ),
    ),
}


# Images per split, known before any file is read, so limits can be checked up front.
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "mnist": {"training": 60_000, "test": 10_000},
    "fashion-mnist": {"training": 60_000, "test": 10_000},
}


def _source(dataset: str) -> DatasetSource:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[dataset]


def default_data_dir() -> Path:
    """The user cache folder's `data`: the one folder files are downloaded into unasked."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("harness")) / "data"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`explicit` (CLI --data-dir) > $HARNESS_DATA_DIR > `default_data_dir()`."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_data_dir()


_data_dir = data_dir  # functions below take a `data_dir` argument that shadows the name


def may_download(data_dir: str | os.PathLike[str] | None, download: bool | None) -> bool:
    """`download`, or where it is None, whether the folder is the default cache folder: a
    folder the user named (a typo, a read-only share) gets no files unless asked (--download)."""
    if download is not None:
        return download
    return _data_dir(data_dir).resolve() == default_data_dir().resolve()


# ---------------------------------------------------------------------------- verification

def _verify_present(path: Path, spec: DataFile) -> None:
    actual = sha256_file(path)
    if actual != spec.sha256:
        size = path.stat().st_size
        raise DataError(
            f"{path}: checksum mismatch (corrupted or truncated file?)\n"
            f"  expected sha256 {spec.sha256} ({spec.size} bytes)\n"
            f"  actual   sha256 {actual} ({size} bytes)\n"
            f"  fix: delete {path} so that it is downloaded again, "
            f"or replace it with the original file"
        )


# ---------------------------------------------------------------------------- download


def _progress(total: int, description: str) -> Progress:
    """A rich progress bar on stderr, shown only when stderr is a terminal."""
    from rich import progress as rp
    from rich.console import Console

    console = Console(stderr=True)
    bar = rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(), rp.DownloadColumn(),
                      rp.TransferSpeedColumn(), console=console, transient=True,
                      disable=not console.is_terminal)
    bar.add_task(description, total=total)
    return bar


def _fetch(url: str, dest: Path, spec: DataFile, timeout: float) -> None:
    """Download `url` into a temp file beside `dest`, check it, then rename it atomically."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest, received = hashlib.sha256(), 0
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=timeout) as resp,
            _progress(spec.size, spec.name) as bar,
        ):
            while chunk := resp.read(_CHUNK):
                received += len(chunk)
                if received > spec.size:
                    raise DataError(f"served more than the expected {spec.size} bytes")
                digest.update(chunk)
                out.write(chunk)
                bar.advance(bar.task_ids[0], len(chunk))
        if digest.hexdigest() != spec.sha256:
            raise DataError(f"checksum mismatch: expected sha256 {spec.sha256} ({spec.size} "
                            f"bytes), got {digest.hexdigest()} ({received} bytes)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _download(dest: Path, spec: DataFile, mirrors: tuple[str, ...], timeout: float) -> None:
    errors: list[str] = []
    for base in mirrors:
        url = base + spec.name
        print(f"Downloading {url}", file=sys.stderr)
        try:
            _fetch(url, dest, spec, timeout)
            return
        except (OSError, DataError, http.client.HTTPException, ValueError) as exc:
            errors.append(f"  {url}: {type(exc).__name__}: {exc}")
    raise DataError(
        f"could not download {spec.name}; every mirror failed:\n" + "\n".join(errors) + "\n"
        f"  fix: download the file yourself and place it at {dest} "
        f"(or point --data-dir / ${ENV_VAR} at a folder holding <dataset>/{spec.name})"
    )


def _writable_folder(folder: Path, path: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"{folder} is read-only")
    except OSError as exc:
        raise DataError(f"{path}: missing, and cannot download it into {folder}: {exc}; "
                        f"choose another folder with --data-dir or ${ENV_VAR}") from exc


def ensure_files(dataset: str, data_dir: str | os.PathLike[str] | None = None,
                 download: bool | None = None, timeout: float = DOWNLOAD_TIMEOUT_S
                 ) -> dict[str, Path]:
    """Return the dataset's four verified files by role, downloading the missing ones where
    `may_download` allows it (None: only into the default cache folder)."""
    source = _source(dataset)
    folder = _data_dir(data_dir) / dataset
    paths: dict[str, Path] = {}
    for role, spec in source.files.items():
        path = folder / spec.name
        if path.is_file():
            _verify_present(path, spec)
        elif not may_download(data_dir, download):
            hint = ("downloading is disabled; place" if download is False else
                    "files are downloaded unasked only into the default cache folder "
                    f"{default_data_dir()}; give --download to download it here, or place")
            raise DataError(f"{path}: missing and {hint} the original file there (from e.g. "
                            f"{source.mirrors[0]}{spec.name})")
        else:
            _writable_folder(folder, path)
            _download(path, spec, source.mirrors, timeout)
            sha256_file(path)  # remember the verified download
        paths[role] = path
    return paths


# ---------------------------------------------------------------------------- IDX parsing


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Parse a gzipped IDX file of unsigned bytes; raise DataError naming the file if invalid."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzip file: {exc}") from exc
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(f"{path}: bad IDX magic number {found}, expected {magic}")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and dims[1:] != _HW:
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise DataError(f"{path}: payload is {len(data) - header} bytes, "
                        f"expected {expected} for dimensions {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


@dataclass(frozen=True, eq=False)
class RawDataset:
    """Decoded files: uint8 images (N, 28, 28) and uint8 labels (N,) (a user's .npz: its x
    arrays, (N, *input shape), and int64 labels). Arrays are read-only."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _split(paths: dict[str, Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    x = _read_idx(paths[f"{split}_images"], _IMAGE_MAGIC, 3)
    y = _read_idx(paths[f"{split}_labels"], _LABEL_MAGIC, 1)
    if len(x) != len(y):
        raise DataError(f"{paths[f'{split}_images']}: {len(x)} images but "
                        f"{paths[f'{split}_labels']} has {len(y)} labels")
    if y.size and int(y.max()) > 9:
        raise DataError(f"{paths[f'{split}_labels']}: label {int(y.max())} outside 0-9")
    return x, y


@lru_cache(maxsize=8)
def _load_raw_cached(dataset: str, folder: str, download: bool | None) -> RawDataset:
    paths = ensure_files(dataset, folder, download=download)
    x_train, y_train = _split(paths, "train")
    x_test, y_test = _split(paths, "test")
    return RawDataset(dataset, x_train, y_train, x_test, y_test)


def load_raw(dataset: str, data_dir: str | os.PathLike[str] | None = None,
             download: bool | None = None) -> RawDataset:
    """Verified, decoded dataset; cached per process (keyed by dataset and resolved folder)."""
    _source(dataset)
    folder = str(_data_dir(data_dir).resolve())
    return _load_raw_cached(dataset, folder, download)


# ---------------------------------------------------------------------------- arrays


@dataclass(frozen=True, eq=False)
class Arrays:
    """Model-ready data: float32 inputs shaped (N, *input shape) and int64 labels; with a
    validation split (`hold_out`), the held-out part of the training set in x_val, y_val."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])


def _check_limit(what: str, limit: int | None, available: int, split: str) -> int:
    if limit is None:
        return available
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) \
            or not 0 < limit <= available:
        raise UsageError(f"{what} must be a positive integer no larger than {available} "
                         f"(the size of the {split} set), got {limit!r}")
    return int(limit)


def _inputs(images: np.ndarray, n: int, input_spec: InputSpec) -> np.ndarray:
    """x / scale, then (x - mean) / std per `input.normalize`, in float32 (as torchvision's
    ToTensor and Normalize compute it), shaped (n, *input shape)."""
    x = images[:n].astype(np.float32).reshape((n, *input_spec.shape))
    x /= np.float32(input_spec.scale)
    if input_spec.normalize is not None:
        x -= np.asarray(input_spec.normalize.mean, dtype=np.float32)
        x /= np.asarray(input_spec.normalize.std, dtype=np.float32)
    return x


def prepare(raw: RawDataset, input_spec: InputSpec, limit: int | None = None,
            limit_test: int | None = None) -> Arrays:
    """First `limit` / `limit_test` samples, x / scale (and normalized) as float32, reshaped
    per the spec."""
    shape = tuple(input_spec.shape)
    if input_spec.npz is None and shape not in INPUT_SHAPES:
        raise ValueError(f"input shape must be one of {INPUT_SHAPES}, got {shape}")
    if input_spec.dataset_name != raw.name:
        raise ValueError(f"input spec wants {input_spec.dataset_name!r} but got {raw.name!r} "
                         "data")
    n_train = _check_limit("limit", limit, len(raw.y_train), "training")
    n_test = _check_limit("limit_test", limit_test, len(raw.y_test), "test")
    return Arrays(
        x_train=_inputs(raw.x_train, n_train, input_spec),
        y_train=raw.y_train[:n_train].astype(np.int64),
        x_test=_inputs(raw.x_test, n_test, input_spec),
        y_test=raw.y_test[:n_test].astype(np.int64),
    )


def load_input_raw(input_spec: InputSpec, data_dir: str | os.PathLike[str] | None = None,
                   download: bool | None = None, classes: int | None = None) -> RawDataset:
    """The spec's dataset decoded: MNIST / Fashion-MNIST from the data folder, or its .npz
    (checked against the input shape and `classes`, the model's output size; None: labels
    are only checked to be >= 0)."""
    npz = input_spec.npz
    if npz is None:
        return load_raw(input_spec.dataset_name, data_dir, download=download)
    assert npz.sha256 is not None  # filled in when the spec was read
    arrays = read_npz(npz.resolved, npz.sha256, tuple(input_spec.shape), classes)
    return RawDataset("npz", *arrays)


def data_files(input_spec: InputSpec) -> dict[str, str]:
    """{file name: sha256} of the files the spec's data comes from (what a record names)."""
    npz = input_spec.npz
    if npz is not None:
        return {npz.resolved.name: str(npz.sha256)}
    return {file.name: file.sha256 for file in _source(input_spec.dataset_name).files.values()}


def load_arrays(input_spec: InputSpec, data_dir: str | os.PathLike[str] | None = None,
                limit: int | None = None, limit_test: int | None = None,
                download: bool | None = None, classes: int | None = None) -> Arrays:
    """`prepare(load_input_raw(input_spec, ...), input_spec, limit, limit_test)`."""
    raw = load_input_raw(input_spec, data_dir, download=download, classes=classes)
    return prepare(raw, input_spec, limit=limit, limit_test=limit_test)
