"""A bad spec gets one clear line per problem naming the file, the layer and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.spec import SpecError, list_specs, load_spec, parse_spec, spec_hash
from harness.spec.layers import LAYER_TYPES

VALID = """\
name: tiny
input: {shape: [28, 28, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}
  - {type: maxpool2d, pool_size: 2}
  - {type: flatten}
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: sgd, learning_rate: 0.01, momentum: 0.0, nesterov: false}
  batch_size: 32
  epochs: 1
"""


def _error_for(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "Traceback" not in message
    for line in message.splitlines():
        assert line.startswith(f"{path}: "), line
    return message


def test_valid_spec_loads_with_name_from_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(VALID.replace("name: tiny\n", ""))
    spec = load_spec(path)
    assert spec.name == "mine"
    assert spec.layers[0].kernel_size == (3, 3)
    assert spec.layers[1].resolved_strides == (2, 2)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("type: maxpool2d", "type: bn",
         f"layers[1].type: expected one of {sorted(LAYER_TYPES)}, got 'bn'"),
        ("filters: 4", "filters: four", "layers[0].filters: input should be a valid integer"),
        ("filters: 4", "filters: 4, kernal_size: 3", "layers[0]: unknown field 'kernal_size'"),
        ("activation: relu", "activation: silu", "layers[0].activation: expected one of"),
        ("activation: relu}", "activation: relu, padding: full}", "layers[0].padding: "
         "expected one of ['valid', 'same'], got 'full'"),
        ("learning_rate: 0.01", "learning_rate: -1", "train.optimizer.learning_rate: input "
         "should be greater than 0"),
        ("nesterov: false", "nesterov: false, decay: 0.1", "train.optimizer: unknown field "
         "'decay'"),
        ("name: sgd", "name: lbfgs", "train.optimizer.name: expected one of ['adadelta', "
         "'adagrad', 'adam', 'adamw', 'nadam', 'rmsprop', 'sgd'], got 'lbfgs'"),
        ("batch_size: 32", "batch_size: 0", "train.batch_size: input should be greater than 0"),
        ("kernel_size: 3", "kernel_size: 30", "layers[0].kernel_size: window 30x30 does not "
         "fit input 28x28"),
        ("  - {type: flatten}\n", "", "layers[2].type: dense needs a flat input"),
        ("units: 10", "units: 12", "layers[3].type: the model must end with 10 class "
         "probabilities, got shape (12,)"),
        ("activation: softmax", "activation: relu", "layers[3].activation: the last layer "
         "must be a softmax"),
        ("shape: [28, 28, 1]", "shape: [32, 32, 3]", "input: shape must be [784] (flat), "
         "[28, 28] (rows as a sequence) or [28, 28, 1]"),
    ],
)
def test_invalid_spec_names_file_layer_and_field(tmp_path: Path, old: str, new: str,
                                                 expected: str) -> None:
    assert old in VALID
    message = _error_for(tmp_path, VALID.replace(old, new, 1))
    assert expected in message


def test_each_problem_is_reported_once(tmp_path: Path) -> None:
    text = VALID.replace("filters: 4", "filters: -4").replace("batch_size: 32", "batch_size: x")
    lines = _error_for(tmp_path, text).splitlines()
    assert len(lines) == 2
    assert "layers[0].filters" in lines[0] and "train.batch_size" in lines[1]


def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    message = _error_for(tmp_path, "name: x\nlayers: [ {type: dense\n")
    assert "invalid YAML" in message and "line " in message


def test_non_mapping_yaml_is_rejected(tmp_path: Path) -> None:
    assert "expected a YAML mapping" in _error_for(tmp_path, "- just\n- a list\n")


def test_missing_required_fields(tmp_path: Path) -> None:
    message = _error_for(tmp_path, "name: x\ninput: {shape: [784]}\n")
    assert "layers: required field is missing" in message
    assert "train: required field is missing" in message


def test_optimizer_hyperparameters_are_required(tmp_path: Path) -> None:
    message = _error_for(tmp_path, VALID.replace(", momentum: 0.0, nesterov: false", ""))
    assert "train.optimizer.momentum: required field is missing" in message
    assert "train.optimizer.nesterov: required field is missing" in message


def test_unknown_zoo_name_and_missing_file() -> None:
    with pytest.raises(SpecError, match="unknown spec 'no_such_model'"):
        load_spec("no_such_model")
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec("does/not/exist.yaml")


def test_spec_hash_ignores_description_but_not_layers() -> None:
    base = parse_spec(VALID)
    assert spec_hash(base) == spec_hash(parse_spec(VALID + "description: other words\n"))
    assert spec_hash(base) != spec_hash(parse_spec(VALID.replace("filters: 4", "filters: 5")))


def test_zoo_lists_mlp5_bn() -> None:
    assert "mlp5_bn" in list_specs()


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("epochs: 1", "epochs: '1'", "train.epochs: input should be a valid integer, got '1' (a "
                                 "string is not a number)"),
    ("epochs: 1", "epochs: 1.0", "train.epochs: input should be a valid integer, got 1.0"),
    ("epochs: 1", "epochs: 1\n  seed: true", "train.seed: input should be a valid integer, got "
                                             "True (a boolean is not a number)"),
    ("epochs: 1", "epochs: 1\n  seed: 4294967296", "train.seed: input should be less than or "
                                                   "equal to 4294967295"),
    ("epochs: 1", "epochs: 1\n  shuffle: 'yes'", "train.shuffle: input should be a valid "
                                                 "boolean"),
    ("shape: [28, 28, 1]}", "shape: [28, 28, 1], scale: .inf}", "input.scale: input should be "
                                                               "a finite number"),
    ("shape: [28, 28, 1]}", "shape: [28, 28, 1], scale: '255'}", "input.scale: input should be "
                                                                "a valid number"),
    ("shape: [28, 28, 1]", "shape: [28, 28, true]", "input.shape[2]: input should be a valid "
                                                    "integer"),
    ("learning_rate: 0.01", "learning_rate: .nan", "train.optimizer.learning_rate: input "
                                                   "should be a finite number"),
    ("nesterov: false", "nesterov: 0", "train.optimizer.nesterov: input should be a valid "
                                       "boolean, got 0"),
    ("kernel_size: 3", "kernel_size: 3.0", "layers[0].kernel_size"),
    ("kernel_size: 3", "kernel_size: [3, true]", "layers[0].kernel_size[1]: input should be a "
                                                 "valid integer"),
    ("filters: 4", "filters: 4, use_bias: 1", "layers[0].use_bias: input should be a valid "
                                              "boolean"),
    ("units: 10", "units: 10, kernel_initializer: {name: normal, stddev: -.inf}",
     "layers[3].kernel_initializer.stddev: input should be a finite number"),
    ("learning_rate: 0.01", "learning_rate: 1.0e+300", "train.optimizer.learning_rate: 1e+300 "
                                                       "does not fit a float32"),
    ("learning_rate: 0.01", "learning_rate: 1.0e-320", "train.optimizer.learning_rate: 1e-320 "
                                                       "does not fit a float32"),
    ("shape: [28, 28, 1]}", "shape: [28, 28, 1], scale: 1.0e-9}", "input.scale: input should be "
                                                                  "greater than or equal to"),
    ("kernel_size: 3", "kernel_size: 3, strides: 100000", "layers[0].strides[0]: input should "
                                                          "be less than or equal to 1000"),
    ("filters: 4", "filters: 100000", "layers: 170,000,010 parameters; a spec may have at most "
                                      "100,000,000"),
])
def test_numbers_are_strict_and_finite(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in VALID
    assert expected in _error_for(tmp_path, VALID.replace(old, new, 1))


def test_a_file_too_big_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    assert "more than 2,097,152 characters" in _error_for(
        tmp_path, VALID + "description: " + "x" * (3 * 1024 * 1024) + "\n")


@pytest.mark.parametrize("loader", ["CSafeLoader", "SafeLoader"])
@pytest.mark.parametrize("text", [
    VALID + "description: " + "[" * 5000 + "]" * 5000 + "\n",
    VALID + "description: " + "[" * 20 + "]" * 20 + "\n",
    "".join(" " * i + "a:\n" for i in range(1500)) + " " * 1500 + "1\n",
], ids=["flow-5000", "flow-20", "block-1500"])
def test_deep_nesting_is_a_spec_error_with_either_yaml_parser(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader: str, text: str) -> None:
    import yaml

    from harness.spec import loader as loader_module

    if not hasattr(yaml, loader):
        pytest.skip(f"PyYAML built without {loader}")
    monkeypatch.setattr(loader_module, "_YAML_LOADER", getattr(yaml, loader))
    message = _error_for(tmp_path, text)
    assert "nesting depth" in message or "nested more than 16 levels" in message


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    text = VALID.replace("layers:\n", "layers: &all\n") + "description: *all\n"
    assert "YAML aliases (*name) are not allowed" in _error_for(tmp_path, text)


@pytest.mark.parametrize("line", ["description: 2001-02-30", f"description: {'9' * 5000}",
                                  "description: !!int nine", "description: !!python/name:os"])
def test_scalars_yaml_cannot_build_are_spec_errors(tmp_path: Path, line: str) -> None:
    assert "invalid YAML" in _error_for(tmp_path, VALID + line + "\n")


def test_names_the_os_refuses_are_spec_errors() -> None:
    for ref in ("x" * 5000, "x" * 5000 + ".yaml", "a\0b", "dir/a\0b.yaml"):
        with pytest.raises(SpecError):
            load_spec(ref)
