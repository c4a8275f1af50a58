"""Shape inference and parameter counting, without any framework."""

from __future__ import annotations

import pytest

from harness.spec import SpecError, infer, parse_spec

TEMPLATE = """\
name: t
input: {{shape: [28, 28, 1]}}
layers:
{layers}
  - {{type: flatten}}
  - {{type: dense, units: 10, activation: softmax}}
train:
  optimizer: {{name: sgd, learning_rate: 0.01, momentum: 0.0, nesterov: false}}
  batch_size: 32
  epochs: 1
"""


def _infer(*layers: str):
    return infer(parse_spec(TEMPLATE.format(layers="\n".join(f"  - {x}" for x in layers))))


@pytest.mark.parametrize(
    ("layer", "shape", "padding"),
    [
        ("{type: conv2d, filters: 8, kernel_size: 3}", (26, 26, 8), (0, 0, 0, 0)),
        ("{type: conv2d, filters: 8, kernel_size: 3, padding: same}", (28, 28, 8), (1, 1, 1, 1)),
        # TensorFlow puts the extra row/column of an even kernel's 'same' padding at the end
        ("{type: conv2d, filters: 8, kernel_size: 4, padding: same}", (28, 28, 8), (1, 2, 1, 2)),
        ("{type: conv2d, filters: 8, kernel_size: 3, strides: 2, padding: same}", (14, 14, 8),
         (0, 1, 0, 1)),
        ("{type: conv2d, filters: 8, kernel_size: [5, 3], strides: [2, 1]}", (12, 26, 8),
         (0, 0, 0, 0)),
        ("{type: maxpool2d, pool_size: 3}", (9, 9, 1), (0, 0, 0, 0)),
        ("{type: avgpool2d, pool_size: 2, strides: 1}", (27, 27, 1), (0, 0, 0, 0)),
        ("{type: avgpool2d, pool_size: 3, padding: same}", (10, 10, 1), (1, 1, 1, 1)),
    ],
)
def test_window_layers(layer: str, shape: tuple[int, ...], padding: tuple[int, ...]) -> None:
    info = _infer(layer).layers[0]
    assert info.output_shape == shape
    assert info.padding == padding


def test_parameter_counts_match_keras_formulas() -> None:
    summary = _infer("{type: conv2d, filters: 32, kernel_size: 3, activation: relu}",
                     "{type: batchnorm, momentum: 0.99, epsilon: 0.001}",
                     "{type: conv2d, filters: 6, kernel_size: 5, use_bias: false}")
    conv, bn, conv_nobias, flatten, dense = summary.layers
    assert conv.trainable_params == 3 * 3 * 1 * 32 + 32
    assert (bn.trainable_params, bn.non_trainable_params) == (64, 64)
    assert conv_nobias.trainable_params == 5 * 5 * 32 * 6
    assert flatten.output_shape == (22 * 22 * 6,)
    assert dense.trainable_params == 22 * 22 * 6 * 10 + 10
    assert summary.non_trainable_params == 64
    assert summary.total_params == sum(i.params for i in summary.layers)


def test_every_shape_problem_is_reported_in_one_pass() -> None:
    """Problems after which the shapes are still known do not hide the ones after them: a
    dense layer on an image, a softmax on an image, and a last layer that is no softmax."""
    text = """
name: two
input: {dataset: mnist, shape: [28, 28, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, activation: softmax}
  - {type: dense, units: 10, activation: relu}
train:
  optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}
  batch_size: 32
  epochs: 1
"""
    with pytest.raises(SpecError) as caught:
        infer(parse_spec(text, source="two.yaml"))
    fields = [problem.where for problem in caught.value.problems]
    assert fields == ["layers[0].activation", "layers[1].type", "layers[1].activation"]
