"""Keras and PyTorch build the same function and train it with the same maths.

Parametrized from the zoo, so a new YAML spec is covered with no new test code.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("keras")

from harness.backends import Backend, get_backend  # noqa: E402
from harness.data import load_arrays, load_raw  # noqa: E402
from harness.spec import ModelSpec, infer, initial_weights, list_specs, load_spec, parse_spec  # noqa: E402
from harness.spec.initializers import Weights  # noqa: E402


@pytest.fixture(scope="module")
def keras_backend() -> Backend:
    return get_backend("keras")


@pytest.fixture(scope="module")
def torch_backend() -> Backend:
    return get_backend("torch")


def _scrambled(weights: Weights, seed: int = 1) -> Weights:
    """Initial weights with random biases and BN statistics, so every array matters."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for key, value in weights.items():
        if key.endswith((".bias", ".beta", ".moving_mean")):
            out[key] = rng.normal(0.0, 0.1, value.shape).astype(np.float32)
        elif key.endswith((".gamma", ".moving_variance")):
            out[key] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    return out


def _batch(spec: ModelSpec, n: int = 32) -> np.ndarray:
    load_raw(spec.input.dataset)  # fail here, clearly, if the data is missing
    return load_arrays(spec.input, limit=n, limit_test=n).x_test


@pytest.mark.parametrize("name", list_specs())
def test_same_parameter_counts(name: str, keras_backend: Backend, torch_backend: Backend) -> None:
    spec = load_spec(name)
    summary = infer(spec)
    expected = (summary.trainable_params, summary.non_trainable_params)
    assert keras_backend.count_params(keras_backend.build(spec)) == expected
    assert torch_backend.count_params(torch_backend.build(spec)) == expected


@pytest.mark.parametrize("name", list_specs())
def test_same_weights_give_same_outputs(name: str, keras_backend: Backend,
                                        torch_backend: Backend) -> None:
    spec = load_spec(name)
    weights = _scrambled(initial_weights(spec))
    keras_model, torch_model = keras_backend.build(spec), torch_backend.build(spec)
    keras_backend.set_weights(keras_model, weights)
    torch_backend.set_weights(torch_model, weights)
    x = _batch(spec)
    keras_probs = keras_backend.predict(keras_model, x)
    torch_probs = torch_backend.predict(torch_model, x)
    assert keras_probs.shape == torch_probs.shape == (len(x), 10)
    np.testing.assert_allclose(torch_probs, keras_probs, rtol=0, atol=1e-5)


def test_parity_check_detects_a_wrong_flatten_order(keras_backend: Backend,
                                                    torch_backend: Backend) -> None:
    """Negative control: channels-first flatten order in one backend must show up."""
    spec = load_spec("cnn2_k3_keras_example")
    weights = _scrambled(initial_weights(spec))
    dense = "5.kernel"  # the Dense right after Flatten (12x12x64 -> 128)
    hwc_rows = weights[dense].reshape(12, 12, 64, 128)
    wrong = dict(weights, **{dense: hwc_rows.transpose(2, 0, 1, 3).reshape(9216, 128)})
    keras_model, torch_model = keras_backend.build(spec), torch_backend.build(spec)
    keras_backend.set_weights(keras_model, weights)
    torch_backend.set_weights(torch_model, wrong)
    x = _batch(spec)
    diff = np.abs(keras_backend.predict(keras_model, x) - torch_backend.predict(torch_model, x))
    assert diff.max() > 1e-3


OPTIMIZERS = {
    "sgd": "{name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}",
    "sgd_momentum": "{name: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: false}",
    "sgd_nesterov": "{name: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true}",
    # large epsilons, so that where epsilon goes in the update shows in the weights
    "adam": "{name: adam, learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 0.01}",
    "adadelta": "{name: adadelta, learning_rate: 1.0, rho: 0.95, epsilon: 0.001}",
    "rmsprop": "{name: rmsprop, learning_rate: 0.01, rho: 0.9, momentum: 0.0, epsilon: 0.01,"
               " centered: false}",
    "rmsprop_centered": "{name: rmsprop, learning_rate: 0.01, rho: 0.9, momentum: 0.5, "
                        "epsilon: 0.01, centered: true}",
    "adagrad": "{name: adagrad, learning_rate: 0.1, initial_accumulator_value: 0.1, "
               "epsilon: 0.01}",
    "nadam": "{name: nadam, learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 0.01}",
}

TRAIN_SPEC = """\
name: parity_{label}
input: {{shape: [28, 28, 1]}}
layers:
  - {{type: conv2d, filters: 4, kernel_size: 4, padding: same, activation: tanh}}
  - {{type: avgpool2d, pool_size: 3, strides: 2, padding: same}}
  - {{type: avgpool2d, pool_size: 2}}
  - {{type: flatten}}
  - {{type: dense, units: 16, activation: tanh}}
  - {{type: batchnorm, momentum: 0.9, epsilon: 0.001}}
  - {{type: dense, units: 10, activation: softmax}}
train:
  optimizer: {optimizer}
  batch_size: 50
  epochs: 1
"""


@pytest.mark.parametrize("label", list(OPTIMIZERS))
def test_same_training_steps_give_same_weights(label: str, keras_backend: Backend,
                                               torch_backend: Backend) -> None:
    """Same start, same batches, no dropout: after 8 steps both backends hold the same weights,
    including BN's moving statistics (asymmetric 'same' paddings in a conv and an average pool).

    Float32 noise is kept below the tolerance by design: BN sits on 16 dense features (batch
    statistics over 50 values, not tens of thousands), and average pools replace max pools
    (whose near-ties can flip the winning cell after a 1e-7 difference). The conv uses tanh:
    on MNIST's zero background a conv's output is exactly its bias, so with ReLU a 1e-9 bias
    difference switches the gradient of thousands of pixels on or off at once.
    """
    spec = parse_spec(TRAIN_SPEC.format(label=label, optimizer=OPTIMIZERS[label]))
    arrays = load_arrays(spec.input, limit=400, limit_test=10)
    order = np.random.default_rng(0).permutation(400)
    results, final = {}, {}
    for backend in (keras_backend, torch_backend):
        model = backend.build(spec)
        backend.set_weights(model, initial_weights(spec))
        results[backend.name] = backend.train_epoch(
            model, backend.to_native(arrays.x_train, arrays.y_train), order, 50)
        final[backend.name] = backend.get_weights(model)
    keras_w, torch_w = final["keras"], final["torch"]
    start = initial_weights(spec)
    assert not np.allclose(keras_w["4.kernel"], start["4.kernel"])  # training did move them
    assert not np.allclose(keras_w["5.moving_variance"], start["5.moving_variance"])
    for key in keras_w:
        np.testing.assert_allclose(torch_w[key], keras_w[key], rtol=1e-5, atol=2e-6,
                                   err_msg=f"{label}: {key}")
    assert results["torch"].loss == pytest.approx(results["keras"].loss, rel=1e-4)
    assert results["torch"].accuracy == pytest.approx(results["keras"].accuracy, abs=1e-6)
