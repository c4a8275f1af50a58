"""Graph specs: layers that name their inputs, validated up front with one-line errors; a
chain spec is the special case and keeps its hash."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from harness.spec import SpecError, infer, load_spec, parse_spec, spec_hash
from harness.spec.loader import dump_spec
from harness.spec.shapes import INPUT_INDEX


def _spec(layers: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({
        "name": "graph", "input": {"shape": [28, 28, 1]}, "layers": layers,
        "train": {"optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.0,
                                "nesterov": False}, "batch_size": 8, "epochs": 1}})


def _residual(**change: Any) -> list[dict[str, Any]]:
    layers = [
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "name": "a"},
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "name": "b"},
        {"type": "add", "inputs": ["a", "b"]},
        {"type": "global_avgpool2d"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ]
    for index, fields in change.items():
        layers[int(index.removeprefix("l"))].update(fields)
    return layers


def test_a_residual_graph_infers_shapes_and_inputs() -> None:
    summary = infer(parse_spec(_spec(_residual())))
    assert [info.inputs for info in summary.layers] == [(INPUT_INDEX,), (0,), (0, 1), (2,), (3,)]
    assert summary.layers[2].input_shapes == ((28, 28, 4), (28, 28, 4))
    assert summary.layers[3].output_shape == (4,)
    assert not summary.is_chain
    assert summary.total_params == (9 * 4 + 4) + (9 * 16 + 4) + (4 * 10 + 10)


def test_concatenate_joins_the_last_axis() -> None:
    layers = _residual(l2={"type": "concatenate"})
    summary = infer(parse_spec(_spec(layers)))
    assert summary.layers[2].output_shape == (28, 28, 8)


@pytest.mark.parametrize(("change", "expected"), [
    ({"l2": {"inputs": ["a", "c"]}}, "layers[2].inputs: 'c' is not the name of an earlier layer"),
    ({"l1": {"inputs": ["later"]}, "l4": {"name": "later"}},
     "layers[1].inputs: 'later' is not the name of an earlier layer"),
    ({"l1": {"name": "a"}}, "layers[1].name: 'a' is taken"),
    ({"l0": {"name": "input"}}, "layers[0].name: 'input' is taken"),
    ({"l2": {"inputs": ["a"]}}, "layers[2].inputs: add takes at least 2 input(s); got 1"),
    ({"l3": {"inputs": ["a", "b"]}},
     "layers[3].inputs: global_avgpool2d takes 1 input(s); got 2"),
    ({"l2": {"inputs": ["a", "input"]}},
     "layers[2].inputs: add needs inputs of one shape; got (28, 28, 4), (28, 28, 1)"),
    ({"l2": {"type": "concatenate"}, "l1": {"padding": "valid"}},
     "layers[2].inputs: concatenate needs inputs that differ only in their last axis"),
    ({"l3": {"inputs": ["a"]}}, "layers[2].name: the output of layer 2 (add) is never used"),
    ({"l2": {"inputs": []}}, "layers[2].inputs"),
    ({"l0": {"name": "1a"}}, "layers[0].name"),
    ({"l3": {"type": "global_maxpool2d", "inputs": ["input"]}, "l2": {"inputs": ["a", "b"]}},
     "never used"),
])
def test_graph_mistakes_are_one_line_each(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec(_residual(**change)), source="net.yaml")
    lines = str(caught.value).splitlines()
    assert any(expected in line for line in lines), lines
    assert all(line.startswith("net.yaml: layers") for line in lines), lines


def test_a_global_pool_needs_an_image() -> None:
    layers = [{"type": "flatten"}, {"type": "global_maxpool2d"},
              {"type": "dense", "units": 10, "activation": "softmax"}]
    with pytest.raises(SpecError, match=r"layers\[1\].type: global_maxpool2d needs an image"):
        parse_spec(_spec(layers))


def test_chain_specs_dump_without_graph_fields_and_keep_their_hash() -> None:
    spec = load_spec("cnn3_k3")
    assert "inputs" not in dump_spec(spec) and "name: null" not in dump_spec(spec)
    assert infer(spec).is_chain
    # the same chain with the default inputs written out is the same model, not the same text
    data = yaml.safe_load(dump_spec(spec))
    data["layers"][1]["inputs"] = ["first"]
    data["layers"][0]["name"] = "first"
    explicit = parse_spec(yaml.safe_dump(data))
    assert infer(explicit).is_chain
    assert spec_hash(explicit) != spec_hash(spec)
    assert spec_hash(parse_spec(dump_spec(spec))) == spec_hash(spec) == "3dbad6f1b3253884"
