"""`--set` overrides and grids."""

from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.run.sweeps import MAX_LABEL, apply_point, grid, parse_set, point_label
from harness.spec import load_spec


def test_grid_is_the_cartesian_product_of_the_lists() -> None:
    points = grid([parse_set("layers[*].activation=relu,sigmoid"),
                   parse_set("train.optimizer.name=adam,sgd")])
    assert len(points) == 4
    assert {(p["layers[*].activation"], p["train.optimizer.name"]) for p in points} == {
        ("relu", "adam"), ("relu", "sgd"), ("sigmoid", "adam"), ("sigmoid", "sgd")}
    assert grid([]) == [{}]


def test_star_selects_hidden_layers_and_keeps_the_output_softmax() -> None:
    spec = apply_point(load_spec("mlp5_bn"), {"layers[*].activation": "tanh"})
    dense = [layer for layer in spec.layers if layer.type == "dense"]
    assert [layer.activation for layer in dense] == ["tanh"] * 5 + ["softmax"]
    assert spec.name == "mlp5_bn--activation-tanh"


def test_values_are_yaml_scalars_and_indices_slices_work() -> None:
    base = load_spec("mlp2")
    spec = apply_point(base, {"layers[0].units": 32, "train.batch_size": 64})
    assert spec.layers[0].units == 32 and spec.train.batch_size == 64
    sliced = apply_point(base, {"layers[0:2].use_bias": False})
    assert [layer.use_bias for layer in sliced.layers] == [False, False, True]
    assert parse_set("train.optimizer.learning_rate=0.1,1e-3").values == (0.1, 0.001)


def test_switching_optimizer_fills_its_defaults_explicit_values_win() -> None:
    spec = apply_point(load_spec("mlp2"), {"train.optimizer.name": "sgd",
                                           "train.optimizer.momentum": 0.9})
    optimizer = spec.train.optimizer
    assert (optimizer.name, optimizer.learning_rate, optimizer.momentum) == ("sgd", 0.01, 0.9)


def test_label_is_folder_safe() -> None:
    assert point_label({"layers[*].activation": "relu", "train.optimizer.learning_rate": 0.1}) \
        == "activation-relu+learning_rate-0.1"


@pytest.mark.parametrize(("text", "message"), [
    ("nonsense", "expected PATH=VALUE"),
    ("layers[a].units=3", "is not a field path"),
    ("layers[0].units=1,,2", "an empty value"),
    ("layers[0].units=[1", "invalid YAML"),
    ("layers[0].units=nan", "expected a finite number"),
    ("train.epochs=1e400", "expected a finite number"),
    ("layers[0].units=*x", "aliases"),
    ("layers[*].filters=3", "mlp2: no layer has that field"),
    ("layers[9].units=3", "mlp2: index 9 is out of range: layers has 3 entries"),
    ("layers[-4].units=3", "index -4 is out of range"),
    ("layers[5:9].units=3", "no layer has that field"),
    ("layers.units=3", "layers is a list"),
    ("layers[0]=3", "needs a list of mappings and a field"),
    ("layers[0].filters=3", "layers[0] (dense) has no field 'filters'"),
    ("train.batch_size.x=3", "train.batch_size is 128, which has no fields"),
    ("trian.epochs=3", "the spec has no field 'trian'"),
    ("train.optimizer.name=lbfgs", "expected one of"),
    ("layers[0].units=abc", "layers[0].units: input should be a valid integer, got 'abc'"),
    ("layers[0].units=true", "got True (a boolean is not a number)"),
    ("train.optimizer.learning_rate=x", "train.optimizer.learning_rate: input should be a "
                                        "valid number"),
    ("train.seed=4294967296", "train.seed: input should be less than or equal to 4294967295"),
    ("layers[-1].activation=relu", "the last layer must be a softmax"),
])
def test_every_bad_override_is_one_usage_error_naming_set(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        override = parse_set(text)
        apply_point(load_spec("mlp2"), {override.path: override.values[0]})
    line = str(info.value)
    assert line.startswith("--set ") and "\n" not in line
    assert message in line


def test_a_path_given_twice_is_refused() -> None:
    with pytest.raises(UsageError, match="given twice"):
        grid([parse_set("train.epochs=1"), parse_set("train.epochs=2")])


def test_unset_optional_fields_can_be_set() -> None:
    spec = apply_point(load_spec("cnn3_k3"), {"layers[*].strides": 1})
    pools = [layer for layer in spec.layers if layer.type == "maxpool2d"]
    assert pools and all(layer.strides == (1, 1) for layer in pools)


def test_long_labels_are_shortened_and_stay_distinct() -> None:
    first = point_label({"description": "x" * 200})
    second = point_label({"description": "x" * 199 + "y"})
    assert len(first) <= MAX_LABEL and len(second) <= MAX_LABEL and first != second
