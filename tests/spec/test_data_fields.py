"""The spec's data fields: `input.dataset: {npz: PATH}`, `input.normalize`, `train.validation:
{split: F}`: how they read, what they refuse (one line naming the field), and what they do to
spec_hash and training_hash (nothing for a spec that does not use them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.run.sweeps import apply_point
from harness.spec import SpecError, load_spec, parse_spec, spec_hash, training_hash
from harness.spec.loader import dump_spec

SPEC = """\
name: tiny
input:
  dataset: {dataset}
  shape: {shape}
{extra_input}layers:
  - {{type: flatten}}
  - {{type: dense, units: {units}, activation: softmax}}
train:
  optimizer: {{name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}}
  batch_size: 32
  epochs: 1
  validation: {validation}
"""


def text(dataset: str = "{npz: data.npz}", shape: str = "[8, 8, 1]", units: int = 3,
         validation: str = "test", extra_input: str = "") -> str:
    return SPEC.format(dataset=dataset, shape=shape, units=units, validation=validation,
                       extra_input=extra_input)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    np.savez(tmp_path / "data.npz", x_train=np.zeros((4, 8, 8, 1), np.uint8),
             y_train=np.zeros(4, int), x_test=np.zeros((2, 8, 8, 1), np.uint8),
             y_test=np.zeros(2, int))
    return tmp_path


def load(folder: Path, spec_text: str) -> object:
    path = folder / "spec.yaml"
    path.write_text(spec_text)
    return load_spec(path)


def error(folder: Path, spec_text: str) -> str:
    with pytest.raises(SpecError) as info:
        load(folder, spec_text)
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    return lines[0].split(": ", 1)[1]


def test_the_npz_is_read_beside_the_spec_and_written_back_absolute(folder: Path) -> None:
    spec = load(folder, text())
    assert spec.input.npz.resolved == folder / "data.npz"
    assert spec.input.dataset_name == "npz" and spec.input.dataset_label == "npz:data.npz"
    dumped = dump_spec(spec)
    assert f"npz: {folder / 'data.npz'}" in dumped and "path:" not in dumped
    again = parse_spec(dumped, source="elsewhere")
    assert again == spec and spec_hash(again) == spec_hash(spec)


def test_the_hash_is_the_content_not_the_place(folder: Path, tmp_path_factory) -> None:
    spec = load(folder, text())
    other = tmp_path_factory.mktemp("other")
    shutil.copy(folder / "data.npz", other / "data.npz")
    assert spec_hash(load(other, text())) == spec_hash(spec)
    np.savez(other / "data.npz", x_train=np.ones((4, 8, 8, 1), np.uint8),
             y_train=np.zeros(4, int), x_test=np.zeros((2, 8, 8, 1), np.uint8),
             y_test=np.zeros(2, int))
    assert spec_hash(load(other, text())) != spec_hash(spec)


def test_the_zoo_hashes_are_unchanged() -> None:
    """normalize (absent) and the unions leave the zoo's hashes as the records have them."""
    assert (spec_hash(load_spec("mlp2")), training_hash(load_spec("mlp2"))) == (
        "d511d8f7b0ff24c1", "bc31d83ee7ea71b7")
    assert spec_hash(load_spec("cnn3_k3")) == "3dbad6f1b3253884"


def test_npz_input_takes_any_shape_and_classes_but_mnist_does_not(folder: Path) -> None:
    assert load(folder, text(shape="[5, 7]", units=4)).input.shape == (5, 7)
    assert "shape must be [784] (flat)" in error(folder, text(dataset="mnist"))
    assert "must end with 10 class" in error(folder, text(dataset="mnist", shape="[784]"))
    assert "one probability per class (2 or more)" in error(folder, text(units=1))


@pytest.mark.parametrize(("dataset", "message"), [
    ("mnst", "input.dataset: expected one of ['mnist', 'fashion-mnist'], got 'mnst'"),
    ("{path: data.npz}", "input.dataset: unknown field 'path'; allowed fields: ['npz', "
                         "'sha256']"),
    ("{npz: data.npz, sha256: '" + "0" * 64 + "'}", "the file changed since the spec was "
                                                    "written"),
])
def test_a_bad_dataset_is_one_line(folder: Path, dataset: str, message: str) -> None:
    assert message in error(folder, text(dataset=dataset))


@pytest.mark.parametrize(("validation", "message"), [
    ("maybe", "train.validation: expected one of ['test', 'none'], got 'maybe'"),
    ("{split: 1.0}", "train.validation.split: input should be less than 1"),
    ("{split: 0}", "train.validation.split: input should be greater than 0"),
    ("{fraction: 0.1}", "train.validation: unknown field 'fraction'"),
])
def test_a_bad_validation_is_one_line(folder: Path, validation: str, message: str) -> None:
    assert message in error(folder, text(validation=validation))


def test_a_validation_split_counts_in_the_training_hash(folder: Path) -> None:
    test, none = load(folder, text()), load(folder, text(validation="none"))
    split = load(folder, text(validation="{split: 0.1}"))
    assert split.train.validation_split == 0.1 and test.train.validation_split is None
    assert training_hash(test) == training_hash(none)  # validating on the test set: an alias
    assert training_hash(split) != training_hash(test)  # holding out: other training data
    assert len({spec_hash(test), spec_hash(none), spec_hash(split)}) == 3


@pytest.mark.parametrize(("normalize", "message"), [
    ("{mean: 0.1, std: 0}", "input.normalize.std"),
    ("{mean: [0.1, 0.2], std: 0.3}", "one value per channel (1, the input's last axis)"),
    ("{mean: [0.1, 0.2], std: [0.3]}", "lists of different lengths [1, 2]"),
    ("{mean: [], std: 1.0}", "an empty list"),
    ("{mean: 0.1}", "input.normalize.std: required field is missing"),
])
def test_a_bad_normalize_is_one_line(folder: Path, normalize: str, message: str) -> None:
    assert message in error(folder, text(extra_input=f"  normalize: {normalize}\n"))


def test_normalize_counts_in_both_hashes(folder: Path) -> None:
    plain = load(folder, text())
    normalized = load(folder, text(extra_input="  normalize: {mean: 0.1307, std: 0.3081}\n"))
    per_channel = load(folder, text(extra_input="  normalize: {mean: [0.5], std: [0.25]}\n"))
    assert per_channel.input.normalize.channels() == 1
    assert spec_hash(plain) != spec_hash(normalized)
    assert training_hash(plain) != training_hash(normalized)


def test_set_reaches_the_new_fields_of_a_zoo_spec(folder: Path) -> None:
    """`--set` below a field given as a word (or left out) starts it as a mapping; --data is
    --set input.dataset.npz=PATH, labelled by the file's name."""
    mlp2 = load_spec("mlp2")
    split = apply_point(mlp2, {"train.validation.split": 0.1})
    assert split.train.validation_split == 0.1 and split.name == "mlp2--split-0.1"
    normalized = apply_point(mlp2, {"input.normalize.mean": 0.5})
    assert (normalized.input.normalize.mean, normalized.input.normalize.std) == (0.5, 1.0)
    np.savez(folder / "mine.npz", x_train=np.zeros((4, 784), np.uint8),
             y_train=np.zeros(4, int), x_test=np.zeros((2, 784), np.uint8),
             y_test=np.zeros(2, int))
    own = apply_point(mlp2, {"input.dataset.npz": str(folder / "mine.npz")})
    assert own.input.npz.resolved == folder / "mine.npz" and own.name == "mlp2--npz-mine"
    other = apply_point(own, {"input.dataset.npz": str(folder / "data.npz")})  # sha256 renewed
    assert other.input.npz.resolved == folder / "data.npz"
    assert apply_point(own, {"input.dataset": "mnist"}).input.npz is None
