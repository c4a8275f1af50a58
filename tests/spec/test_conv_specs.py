"""The conv family's spec side: one-line load errors naming the field, shapes, weights in
Keras' layouts and names, multiply-accumulate positions, labels, and conv2d's new optional
fields left out of dumps (older specs keep their hashes: tests/spec/test_graph.py)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from harness.spec import SpecError, infer, parse_spec
from harness.spec.loader import dump_spec


def _spec(layers: list[dict[str, Any]], shape: list[int]) -> str:
    return yaml.safe_dump({
        "name": "conv", "input": {"shape": shape}, "layers": layers,
        "train": {"optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.0,
                                "nesterov": False}, "batch_size": 8, "epochs": 1}})


def _image(*layers: dict[str, Any]) -> str:
    return _spec([*layers, {"type": "flatten"},
                  {"type": "dense", "units": 10, "activation": "softmax"}], [28, 28, 1])


def _sequence(*layers: dict[str, Any]) -> str:
    return _spec([*layers, {"type": "global_avgpool1d"},
                  {"type": "dense", "units": 10, "activation": "softmax"}], [28, 28])


@pytest.mark.parametrize(("text", "expected"), [
    (_image({"type": "conv2d", "filters": 4, "kernel_size": 3, "strides": 2,
             "dilation_rate": 2}),
     "layers[0]: strides [2, 2] > 1 together with dilation_rate [2, 2] > 1 is not supported"),
    (_image({"type": "depthwise_conv2d", "kernel_size": 3, "strides": [1, 2],
             "dilation_rate": [2, 1]}),
     "layers[0]: strides [1, 2] > 1 together with dilation_rate [2, 1] > 1"),
    (_sequence({"type": "conv1d", "filters": 4, "kernel_size": 3, "strides": 2,
                "dilation_rate": 2}),
     "layers[0]: strides [2] > 1 together with dilation_rate [2] > 1"),
    (_image({"type": "conv2d", "filters": 3, "kernel_size": 3, "groups": 2}),
     "layers[0]: filters (3) must be divisible by groups (2)"),
    (_image({"type": "conv2d", "filters": 4, "kernel_size": 3}),  # then 4 channels in 3 groups
     None),
    (_image({"type": "conv2d", "filters": 4, "kernel_size": 3, "groups": 0}),
     "layers[0].groups: input should be greater than 0, got 0"),
    (_sequence({"type": "conv1d", "filters": 4, "kernel_size": 3, "padding": "full"}),
     "layers[0].padding: expected one of ['valid', 'same', 'causal'], got 'full'"),
    (_image({"type": "depthwise_conv2d", "kernel_size": 3, "padding": "causal"}),
     "layers[0].padding: expected one of ['valid', 'same'], got 'causal'"),
    (_image({"type": "separable_conv2d", "filters": 4, "kernel_size": 3,
             "pointwise_initializer": "nope"}),
     "layers[0].pointwise_initializer"),
    (_image({"type": "conv1d", "filters": 4, "kernel_size": 3}),
     "layers[0].type: conv1d needs a sequence (steps, features); got shape (28, 28, 1)"),
    (_sequence({"type": "depthwise_conv2d", "kernel_size": 3}),
     "layers[0].type: depthwise_conv2d needs an image (H, W, C); got shape (28, 28)"),
    (_image({"type": "global_maxpool1d"}),
     "layers[0].type: global_maxpool1d needs a sequence (steps, features); got shape"),
    (_sequence({"type": "conv1d", "filters": 4, "kernel_size": 15, "dilation_rate": 2}),
     "layers[0].kernel_size: window 15 (dilation 2) does not fit 28 steps with padding 'valid'"),
    (_image({"type": "depthwise_conv2d", "kernel_size": 15, "dilation_rate": 2}),
     "layers[0].kernel_size: window 15x15 does not fit input 28x28 with padding 'valid'"),
])
def test_a_wrong_conv_field_is_one_line_naming_it(text: str, expected: str | None) -> None:
    if expected is None:  # 4 channels into a grouped conv2d of 3 groups: found at inference
        text = text.replace("- type: flatten", "- {type: conv2d, filters: 3, kernel_size: 1, "
                                               "groups: 3}\n- type: flatten")
        expected = "layers[1].groups: the input's 4 channels must be divisible by groups (3)"
    with pytest.raises(SpecError) as caught:
        infer(parse_spec(text))
    message = str(caught.value)
    assert expected in message and "\n" not in message.strip(), message


def test_shapes_weights_positions_and_labels() -> None:
    summary = infer(parse_spec(_image(
        {"type": "depthwise_conv2d", "kernel_size": 3, "strides": 2, "padding": "same",
         "depth_multiplier": 2},
        {"type": "separable_conv2d", "filters": 5, "kernel_size": 3, "dilation_rate": 2,
         "padding": "same", "depth_multiplier": 3, "use_bias": False},
        {"type": "conv2d", "filters": 6, "kernel_size": 2})))
    depthwise, separable, conv = summary.layers[:3]
    assert depthwise.output_shape == (14, 14, 2) and depthwise.padding == (0, 1, 0, 1)
    assert [(w.name, w.shape) for w in depthwise.weights] == [("kernel", (3, 3, 1, 2)),
                                                              ("bias", (2,))]
    assert [(w.name, w.shape) for w in separable.weights] == [
        ("depthwise_kernel", (3, 3, 2, 3)), ("pointwise_kernel", (1, 1, 6, 5))]
    assert separable.output_shape == (14, 14, 5) and separable.padding == (2, 2, 2, 2)
    assert conv.output_shape == (13, 13, 6)
    # positions x parameters = multiply-accumulates: every weight once per output position
    assert depthwise.layer.positions(_inferred(depthwise)) == 14 * 14
    assert depthwise.layer.describe() == "depthwise_conv2d x2 3x3 /2x2 same linear"
    assert separable.layer.describe() == "separable_conv2d 5 3x3 dil2x2 same linear x3"


def _inferred(info: Any) -> Any:
    from harness.spec.layers import Inferred

    return Inferred(info.output_shape, info.padding)


def test_conv1d_and_grouped_conv2d_shapes_and_labels() -> None:
    summary = infer(parse_spec(_sequence(
        {"type": "conv1d", "filters": 6, "kernel_size": 3, "strides": 2, "padding": "same"},
        {"type": "conv1d", "filters": 4, "kernel_size": 3, "dilation_rate": 2,
         "padding": "causal"})))
    first, causal = summary.layers[:2]
    assert first.output_shape == (14, 6) and first.padding == (0, 1, 0, 0)  # the end
    assert [(w.name, w.shape) for w in first.weights] == [("kernel", (3, 28, 6)),
                                                          ("bias", (6,))]
    assert causal.output_shape == (14, 4) and causal.padding == (4, 0, 0, 0)  # all before
    assert causal.layer.positions(_inferred(causal)) == 14
    assert causal.layer.describe() == "conv1d 4 k3 dil2 causal linear"
    grouped = infer(parse_spec(_image(
        {"type": "conv2d", "filters": 4, "kernel_size": 3},
        {"type": "conv2d", "filters": 6, "kernel_size": 3, "groups": 2,
         "dilation_rate": [1, 2]}))).layers[1]
    assert [w.shape for w in grouped.weights] == [(3, 3, 2, 6), (6,)]
    assert grouped.layer.describe() == "conv2d 6 3x3 dil1x2 valid linear g2"


def test_conv2d_dumps_its_new_fields_only_when_set() -> None:
    plain = dump_spec(parse_spec(_image({"type": "conv2d", "filters": 4, "kernel_size": 3})))
    assert "dilation_rate" not in plain and "groups" not in plain
    dilated = parse_spec(_image({"type": "conv2d", "filters": 4, "kernel_size": 3},
                                {"type": "conv2d", "filters": 4, "kernel_size": 3,
                                 "dilation_rate": 2, "groups": 2}))
    text = dump_spec(dilated)
    assert "dilation_rate" in text and "groups: 2" in text
    assert parse_spec(text) == dilated
