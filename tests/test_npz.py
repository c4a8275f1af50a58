"""Your own .npz (harness.data.npz): every way a file can be wrong is one line naming the file,
the key and what is allowed, and exit 2 through `harness train --data`, before any framework
trains; good files are read as given (integer or one-hot labels, reshaped samples)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.data import BadNpz, read_npz
from harness.data.npz import read_headers
from harness.spec.files import sha256_file

SPEC = """\
name: tiny-npz
input:
  dataset: {{npz: {npz}}}
  shape: [8, 8, 1]
layers:
  - {{type: flatten}}
  - {{type: dense, units: 3, activation: softmax}}
train:
  optimizer: {{name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}}
  batch_size: 32
  epochs: 1
"""


def arrays(n_train: int = 40, n_test: int = 10, classes: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_train + n_test, 8, 8, 1), dtype=np.uint8)
    y = (np.arange(n_train + n_test) % classes).astype(np.int64)
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:],
            "y_test": y[n_train:]}


def write(path: Path, **data: np.ndarray) -> Path:
    np.savez(path, **data)  # type: ignore[arg-type]
    return path


def spec_file(folder: Path, npz: str = "good.npz") -> Path:
    write(folder / "good.npz", **arrays())
    path = folder / "tiny.yaml"
    path.write_text(SPEC.format(npz=npz))
    return path


def _changed(**changes: np.ndarray) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        data = {**arrays(), **changes}
        write(path, **{key: value for key, value in data.items() if value is not None})
    return make


def _without(key: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        data = arrays()
        del data[key]
        write(path, **data)
    return make


def _raw_bytes(transform: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        write(path, **arrays())
        path.write_bytes(transform(path.read_bytes()))
    return make


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 4  # inside x_train's stored (uncompressed) bytes
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


def _nan() -> np.ndarray:
    x = arrays()["x_test"].astype(np.float32)
    x[3, 2, 1, 0] = np.nan
    return x


def _inf() -> np.ndarray:
    x = arrays()["x_train"].astype(np.float64)
    x[0, 0, 0, 0] = -np.inf
    return x


def _one_hot(rows: np.ndarray) -> np.ndarray:
    return np.eye(3, dtype=np.float32)[rows]


BAD: dict[str, tuple[Callable[[Path], None], str]] = {
    "not a zip": (lambda p: p.write_bytes(b"not an archive at all"),
                  r"not an \.npz \(zip\) file, or truncated"),
    "truncated": (_raw_bytes(lambda data: data[: len(data) // 2]),
                  r"not an \.npz \(zip\) file, or truncated"),
    "damaged member": (_raw_bytes(_flip_middle), r"x_train: cannot be read: the file is damaged"),
    "missing key": (_without("y_test"), r"y_test: missing; an \.npz needs x_train, y_train, "
                                        r"x_test, y_test \(it holds x_test, x_train, y_train\)"),
    "object array": (_changed(y_train=np.array([1, "a"] * 20, dtype=object)),
                     r"y_train: an array of Python objects, which is never unpickled"),
    "x shape": (_changed(x_train=np.zeros((40, 7, 7, 1), np.uint8)),
                r"x_train: shape \(40, 7, 7, 1\): samples of shape \(7, 7, 1\), the spec's "
                r"input.shape is \[8, 8, 1\] \(64 values a sample\)"),
    "length mismatch": (_changed(y_train=np.zeros(39, np.int64)),
                        r"y_train: 39 labels for 40 samples in x_train"),
    "label too large": (_changed(y_test=np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 2])),
                        r"y_test: label 3 at index 3; labels are 0 to 2 \(3 classes: the "
                        r"model's output units\)"),
    "negative label": (_changed(y_train=np.full(40, -1)), r"y_train: label -1 at index 0"),
    "float labels": (_changed(y_train=np.zeros(40, np.float32)),
                     r"y_train: dtype float32; labels are integers \(or one-hot rows"),
    "one-hot width": (_changed(y_train=np.eye(4)[np.zeros(40, int)]),
                      r"y_train: shape \(40, 4\); expected \(N,\) integer labels or \(N, 3, "
                      r"the model's output units\) one-hot rows"),
    "not one-hot": (_changed(y_test=_one_hot(np.zeros(10, int)) * 0.5),
                    r"y_test: row 0 is \[0.5, 0.0, 0.0\], not one-hot"),
    "nan": (_changed(x_test=_nan()), r"x_test: nan at index \[3, 2, 1, 0\]; values must be "
                                     r"finite \(no NaN or inf\)"),
    "inf": (_changed(x_train=_inf()), r"x_train: -inf at index \[0, 0, 0, 0\]"),
    "empty": (_changed(x_test=np.zeros((0, 8, 8, 1), np.uint8), y_test=np.zeros(0, int)),
              r"x_test: empty \(shape \(0, 8, 8, 1\)\); give at least one sample"),
    "strings": (_changed(x_train=np.full((40, 8, 8, 1), "a")),
                r"x_train: dtype <U1; expected integers \(uint8 pixels\) or floats"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_npz_is_one_line_and_exit_2(case: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    make, message = BAD[case]
    bad = tmp_path / "bad.npz"
    make(bad)
    spec = spec_file(tmp_path)
    status = main(["train", "--spec", str(spec), "--backend", "torch", "--data", str(bad),
                   "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: "), err
    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "out").exists()


def test_the_good_file_passes_the_same_checks(tmp_path: Path) -> None:
    """The negative control of the cases above: the unchanged arrays are read."""
    good = write(tmp_path / "good.npz", **arrays())
    data = read_npz(good, sha256_file(good), (8, 8, 1), 3)
    np.testing.assert_array_equal(data.x_train, arrays()["x_train"])
    np.testing.assert_array_equal(data.y_test, arrays()["y_test"])
    assert data.y_train.dtype == np.int64


def test_one_hot_labels_and_reshaped_samples_are_read(tmp_path: Path) -> None:
    given = arrays()
    path = write(tmp_path / "onehot.npz", x_train=given["x_train"].reshape(40, 64),
                 y_train=_one_hot(given["y_train"]), x_test=given["x_test"],
                 y_test=_one_hot(given["y_test"]).astype(bool), extra=np.zeros(3))
    data = read_npz(path, sha256_file(path), (8, 8, 1), 3)
    assert data.x_train.shape == (40, 8, 8, 1)
    np.testing.assert_array_equal(data.y_train, given["y_train"])
    np.testing.assert_array_equal(data.y_test, given["y_test"])


def test_headers_are_read_without_loading_the_arrays(tmp_path: Path) -> None:
    path = write(tmp_path / "big.npz", **arrays(n_train=400))
    headers = read_headers(path)
    assert headers["x_train"].shape == (400, 8, 8, 1)
    assert headers["x_train"].dtype == np.uint8 and headers["y_test"].shape == (10,)


def test_bad_npz_is_a_usage_error() -> None:
    """exit 2 (a user's file), not DataError's exit 3 (the harness's own data files)."""
    from harness.errors import UsageError

    assert issubclass(BadNpz, UsageError)


def test_a_missing_npz_in_the_spec_is_a_spec_error(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC.format(npz="nowhere.npz"))
    assert main(["train", "--spec", str(spec), "--backend", "torch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {spec}: input.dataset: {tmp_path / 'nowhere.npz'}: no such file; "
                   "give the path of the file, relative to the spec's folder or absolute"]


def test_run_takes_data_and_checks_it_before_any_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`harness run --data` is --set input.dataset.npz=PATH for every spec: a bad file is one
    line and exit 2 before a job starts; a good one plans the specs on it (its path absolute
    in the run folder's spec, which jobs, retime and export re-read)."""
    from test_cli_faults import RecordingExecutor  # tests/

    from harness.commands import run as run_command

    recording = RecordingExecutor()
    monkeypatch.setattr(run_command, "_executor", lambda args, config: recording)
    spec = spec_file(tmp_path)
    bad = write(tmp_path / "bad.npz", **{**arrays(), "y_train": np.full(40, 7)})
    run = ["run", "--specs", str(spec), "--backends", "torch", "--out"]
    assert main([*run, str(tmp_path / "bad-run"), "--data", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"error: {bad}: y_train: label 7 at index 0; labels are 0 to 2 (3 "
                       "classes: the model's output units)")
    assert recording.started == []
    other = write(tmp_path / "other.npz", **arrays())
    monkeypatch.chdir(tmp_path)
    assert main([*run, str(tmp_path / "run"), "--data", "other.npz"]) == 0
    assert recording.started == ["tiny-npz--npz-other--torch--seed0"]
    written = (tmp_path / "run" / "specs" / "tiny-npz--npz-other.yaml").read_text()
    assert f"npz: {other}" in written


@pytest.mark.parametrize(("extra", "message"), [
    (["--dataset", "mnist"], "error: --data: --dataset is given too; give one of them"),
    (["--set", "input.dataset=mnist"], "error: --data: --set input.dataset is given too; give "
                                       "one of them"),
])
def test_data_with_another_dataset_is_one_line(extra: list[str], message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec = spec_file(tmp_path)
    assert main(["train", "--spec", str(spec), "--backend", "torch", "--data",
                 str(tmp_path / "good.npz"), *extra]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]
