"""`--set` overrides and grids."""

from __future__ import annotations

import pytest

from harness.spec import SpecError, load_spec
from harness.sweeps import apply_point, grid, parse_set, point_label


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
    ("layers[*].filters=3", "no layer of 'mlp2' has that field"),
    ("layers[9].units=3", "bad selector"),
    ("train.optimizer.name=lbfgs", "expected one of"),
])
def test_bad_overrides_are_clear(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        override = parse_set(text)
        apply_point(load_spec("mlp2"), dict(zip([override.path], [override.values[0]],
                                                strict=True)))


def test_an_override_that_breaks_the_spec_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="the last layer must be a softmax"):
        apply_point(load_spec("mlp2"), {"layers[-1].activation": "relu"})
