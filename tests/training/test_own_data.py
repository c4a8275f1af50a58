"""`harness train` on your own .npz, in Keras and in PyTorch: a small spec of 8x8 images and
3 classes trains, its record names the file's SHA-256, and a validation split validates every
epoch on the held-out last tenth of the training arrays while the test set stays the test."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.data import DATASETS, hold_out, load_arrays
from harness.spec import load_spec

SPEC = """\
name: own-data
input:
  dataset: {npz: own.npz}
  shape: [8, 8, 1]
  normalize: {mean: 0.5, std: 0.25}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}
  - {type: flatten}
  - {type: dense, units: 3, activation: softmax}
train:
  optimizer: {name: adam, learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1.0e-7}
  batch_size: 32
  epochs: 2
  validation: {split: 0.1}
"""


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = rng.integers(0, 100, (300, 8, 8, 1)).astype(np.uint8)
    x[y == 1, :4] += 150  # learnable: a class is a bright half
    x[y == 2, 4:] += 150
    np.savez(folder / "own.npz", x_train=x[:250], y_train=y[:250], x_test=x[250:],
             y_test=np.eye(3, dtype=np.uint8)[y[250:]])  # one-hot test labels
    (folder / "own.yaml").write_text(SPEC)
    return folder / "own.yaml"


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_own_npz_trains_and_records_its_sha256_and_validation(
        backend: str, spec_path: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch" if backend == "torch" else "keras")
    out = tmp_path / backend
    assert main(["train", "--spec", str(spec_path), "--backend", backend, "--threads", "1",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    npz = spec_path.parent / "own.npz"
    digest = hashlib.sha256(npz.read_bytes()).hexdigest()
    assert metrics["spec"]["dataset"] == "npz"
    assert metrics["spec"]["data_sha256"] == {"own.npz": digest}
    assert (metrics["n_train"], metrics["n_validation"], metrics["n_test"]) == (225, 25, 50)
    for epoch in metrics["history"]:
        assert epoch["val_loss"] is not None and 0 <= epoch["val_accuracy"] <= 1
    assert metrics["test_accuracy"] > 0.6  # it learned (chance: 1/3)
    assert len(metrics["confusion_matrix"]) == 3
    assert sum(map(sum, metrics["confusion_matrix"])) == 50  # the test set, not validation
    assert f"sha256: {digest}" in (out / "spec.yaml").read_text()


def test_the_validation_split_is_the_last_tenth_before_shuffling(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    arrays = hold_out(load_arrays(spec.input, classes=3), 0.1)
    with np.load(spec_path.parent / "own.npz") as given:
        np.testing.assert_array_equal(arrays.y_val, given["y_train"][225:])
        np.testing.assert_array_equal(arrays.y_train, given["y_train"][:225])
        x_val = (given["x_train"][225:].astype(np.float32) / np.float32(255)
                 - np.float32(0.5)) / np.float32(0.25)
    np.testing.assert_array_equal(arrays.x_val, x_val)


def test_the_builtin_datasets_record_their_files_hashes(tmp_path: Path) -> None:
    from harness.data import data_files

    assert data_files(load_spec("mlp2").input) == {
        file.name: file.sha256 for file in DATASETS["mnist"].files.values()}


def test_limit_comes_before_the_split(spec_path: Path, tmp_path: Path) -> None:
    """--limit 100 then split 0.1: 90 train, the 10 after them validate (Keras splits what fit
    is given)."""
    pytest.importorskip("torch")
    out = tmp_path / "limited"
    assert main(["train", "--spec", str(spec_path), "--backend", "torch", "--limit", "100",
                 "--epochs", "1", "--threads", "1", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_validation"], metrics["limit"]) == (90, 10, 100)


def test_export_from_a_train_folder_rereads_the_npz(spec_path: Path, tmp_path: Path) -> None:
    """The train folder's spec.yaml names the file absolutely: `export --from` (and a run's
    jobs and retime, which re-read their spec the same way) finds it from any folder, and the
    parity check runs on the same normalized test arrays."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "t"
    assert main(["train", "--spec", str(spec_path), "--backend", "torch", "--epochs", "1",
                 "--threads", "1", "--out", str(out)]) == 0
    assert main(["export", "--backend", "torch", "--from", str(out), "--out",
                 str(out / "model.onnx")]) == 0
    record = json.loads((out / "model.onnx.json").read_text())
    assert record["spec"]["hash"] == json.loads((out / "metrics.json").read_text())["spec"][
        "hash"]
    assert record["passed"] and record["parity"]["n"] == 50  # the whole test set
