"""Initial weights: deterministic per seed, Keras' formulas, canonical layouts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.spec import initial_weights, load_spec
from harness.spec import layers as L
from harness.spec.initializers import sample


def test_same_seed_same_weights_other_seed_differs() -> None:
    spec = load_spec("mlp5_bn")
    first, again = initial_weights(spec, 0), initial_weights(spec, 0)
    other = initial_weights(spec, 1)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["0.kernel"], other["0.kernel"])
    assert all(v.dtype == np.float32 for v in first.values())


def test_layouts_and_batchnorm_start_values() -> None:
    weights = initial_weights(load_spec("mlp5_bn"))
    assert weights["0.kernel"].shape == (784, 32)
    assert np.array_equal(weights["2.gamma"], np.ones(64)) and not weights["2.beta"].any()
    assert np.array_equal(weights["2.moving_variance"], np.ones(64))
    # spec: RN(0, 0.125) on layer 0; sample stddev over 25k values is within 2%
    assert weights["0.kernel"].std() == pytest.approx(0.125, rel=0.02)
    assert not weights["0.bias"].any()


@pytest.mark.parametrize(
    ("init", "shape", "bound", "std"),
    [
        (L.GlorotUniform(), (3, 3, 16, 32), math.sqrt(6 / (9 * 16 + 9 * 32)), None),
        (L.HeUniform(name="he_uniform"), (400, 300), math.sqrt(6 / 400), None),
        (L.HeNormal(name="he_normal"), (400, 300), None, math.sqrt(2 / 400)),
        (L.GlorotNormal(name="glorot_normal"), (400, 300), None, math.sqrt(2 / 700)),
        (L.TruncatedNormal(name="truncated_normal", stddev=0.1), (400, 300), 0.2, None),
    ],
)
def test_initializer_formulas(init: L.Initializer, shape: tuple[int, ...], bound: float | None,
                              std: float | None) -> None:
    values = sample(init, shape, np.random.default_rng(0))
    assert values.shape == shape
    if bound is not None:
        assert np.abs(values).max() <= bound + 1e-7
        assert np.abs(values).max() > 0.95 * bound
    if std is not None:
        assert values.std() == pytest.approx(std, rel=0.03)
