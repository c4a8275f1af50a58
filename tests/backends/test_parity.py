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


@pytest.mark.parametrize("name", list_specs("all"))
def test_same_parameter_counts(name: str, keras_backend: Backend, torch_backend: Backend) -> None:
    spec = load_spec(name)
    summary = infer(spec)
    expected = (summary.trainable_params, summary.non_trainable_params)
    assert keras_backend.count_params(keras_backend.build(spec)) == expected
    assert torch_backend.count_params(torch_backend.build(spec)) == expected


@pytest.mark.parametrize("name", list_specs("all"))
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


# Every hyperparameter is exactly representable in float32 (a dyadic fraction): Keras turns
# Python floats into float32 constants before casting them to the variables' dtype, so 0.9 would
# be 0.89999998 in Keras and 0.9 in torch, a 3e-8 relative difference before a single step.
OPTIMIZERS = {
    "sgd": "{name: sgd, learning_rate: 0.125, momentum: 0.0, nesterov: false}",
    "sgd_momentum": "{name: sgd, learning_rate: 0.0625, momentum: 0.875, nesterov: false}",
    "sgd_nesterov": "{name: sgd, learning_rate: 0.0625, momentum: 0.875, nesterov: true}",
    # large epsilons, so that where epsilon goes in the update shows in the weights
    "adam": "{name: adam, learning_rate: 0.0078125, beta_1: 0.875, beta_2: 0.9990234375,"
            " epsilon: 0.0078125}",
    "adadelta": "{name: adadelta, learning_rate: 1.0, rho: 0.9375, epsilon: 0.0009765625}",
    "rmsprop": "{name: rmsprop, learning_rate: 0.0078125, rho: 0.875, momentum: 0.0,"
               " epsilon: 0.0078125, centered: false}",
    "rmsprop_centered": "{name: rmsprop, learning_rate: 0.0078125, rho: 0.875, momentum: 0.5, "
                        "epsilon: 0.0078125, centered: true}",
    "adagrad": "{name: adagrad, learning_rate: 0.125, initial_accumulator_value: 0.125, "
               "epsilon: 0.0078125}",
    "nadam": "{name: nadam, learning_rate: 0.0078125, beta_1: 0.875, beta_2: 0.9990234375,"
             " epsilon: 0.0078125}",
    # a large decay (lr * weight_decay = 1/512 of every weight per step), so that it shows
    "adamw": "{name: adamw, learning_rate: 0.0078125, beta_1: 0.875, beta_2: 0.9990234375,"
             " epsilon: 0.0078125, weight_decay: 0.25}",
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
  - {{type: batchnorm, momentum: 0.875, epsilon: 0.0009765625}}
  - {{type: dense, units: 10, activation: softmax}}
train:
  optimizer: {optimizer}
  batch_size: 50
  epochs: 1
"""

# The training-step comparison runs in float64. In float32 the two frameworks' kernels round
# differently, by processor, and 8 steps of an optimizer like Adadelta (lr 1.0) amplify that
# ~1e3-fold: a float32 tolerance tight enough to catch a wrong hyperparameter holds on one CPU
# and not on another. In float64 rounding is 2**-52 (2.2e-16): allowing a million-fold
# amplification of it still leaves the tolerance 1e4 below float32's rounding and far below the
# effect of any real difference in the maths (see the negative controls below).
FLOAT64_RTOL = 1e6 * np.finfo(np.float64).eps  # 2.2e-10
# Keras' Nadam schedule holds a constant of its own in float32 (0.96 ** (0.004 * step), with
# 0.96 rounded to 0.95999998): the update then differs by a few float32 roundings (2**-23
# each) however exactly everything else is computed.
CONSTANT_RTOL = {"nadam": 4 * float(np.finfo(np.float32).eps)}
STEPS, BATCH = 8, 50


@pytest.fixture(scope="module")
def exact_backends() -> tuple[Backend, Backend]:
    return get_backend("keras", dtype="float64"), get_backend("torch", dtype="float64")


def _train_both(label: str, backends: tuple[Backend, Backend],
                change_torch_optimizer: dict[str, float] | None = None) -> tuple[dict, dict]:
    """8 steps from the same start over the same batches in each backend: (weights, results)."""
    spec = parse_spec(TRAIN_SPEC.format(label=label, optimizer=OPTIMIZERS[label]))
    arrays = load_arrays(spec.input, limit=STEPS * BATCH, limit_test=10)
    order = np.random.default_rng(0).permutation(STEPS * BATCH)
    results, final = {}, {}
    for backend in backends:
        model = backend.build(spec)
        backend.set_weights(model, initial_weights(spec))
        if backend.name == "torch" and change_torch_optimizer:
            model.optimizer.param_groups[0].update(change_torch_optimizer)
        results[backend.name] = backend.train_epoch(
            model, backend.to_native(arrays.x_train, arrays.y_train), order, BATCH)
        final[backend.name] = backend.get_weights(model)
    return final, results


def _assert_same_weights(final: dict, label: str) -> None:
    keras_w, torch_w = final["keras"], final["torch"]
    rtol = CONSTANT_RTOL.get(label, FLOAT64_RTOL)
    for key in keras_w:
        assert keras_w[key].dtype == torch_w[key].dtype == np.float64, key
        np.testing.assert_allclose(torch_w[key], keras_w[key], rtol=rtol, atol=rtol * 1e-2,
                                   err_msg=f"{label}: {key}")


@pytest.mark.parametrize("label", list(OPTIMIZERS))
def test_same_training_steps_give_same_weights(label: str,
                                               exact_backends: tuple[Backend, Backend]) -> None:
    """Same start, same batches, no dropout: after 8 steps both backends hold the same weights,
    including BN's moving statistics (asymmetric 'same' paddings in a conv and an average pool).

    BN sits on 16 dense features and average pools replace max pools (whose near-ties can flip
    the winning cell); the conv uses tanh: on MNIST's zero background a conv's output is exactly
    its bias, so with ReLU a tiny bias difference switches thousands of gradients at once.
    """
    final, results = _train_both(label, exact_backends)
    start = initial_weights(parse_spec(TRAIN_SPEC.format(label=label,
                                                         optimizer=OPTIMIZERS[label])))
    assert not np.allclose(final["keras"]["4.kernel"], start["4.kernel"])  # training moved them
    assert not np.allclose(final["keras"]["5.moving_variance"], start["5.moving_variance"])
    _assert_same_weights(final, label)
    # Keras' loss and accuracy metrics are float32 whatever the model's dtype
    assert results["torch"].loss == pytest.approx(results["keras"].loss, rel=1e-6)
    assert results["torch"].accuracy == pytest.approx(results["keras"].accuracy, abs=1e-6)


@pytest.mark.parametrize("change", [{"rho": 0.9365}, {"eps": 0.00098}],
                         ids=["adadelta_rho", "adadelta_epsilon"])
def test_training_step_check_detects_a_slightly_wrong_hyperparameter(
        change: dict[str, float], exact_backends: tuple[Backend, Backend]) -> None:
    """Negative control: torch's Adadelta with rho or epsilon off by 0.1% must fail the check."""
    final, _ = _train_both("adadelta", exact_backends, change_torch_optimizer=change)
    with pytest.raises(AssertionError, match="adadelta"):
        _assert_same_weights(final, "adadelta")


GRAPH_SPEC = """
name: flatten_into_a_residual
input: {shape: [28, 28, 1]}
layers:
  - {type: conv2d, filters: 3, kernel_size: 5, strides: 3, activation: relu}
  - {type: maxpool2d, pool_size: 2}
  - {type: flatten, name: f}
  - {type: dense, units: 48, activation: tanh, name: d}
  - {type: add, inputs: [f, d]}
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}
  batch_size: 8
  epochs: 1
"""


@pytest.mark.parametrize("keras_order", [True, False], ids=["as-built", "torch-order"])
def test_a_flatten_read_by_an_add_is_in_keras_order(
        keras_order: bool, keras_backend: Backend, torch_backend: Backend,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Flatten whose output reaches an addition cannot leave its (C, H, W) order to the next
    dense kernel: torch flattens it in Keras' order. Negative control: left in torch's order
    (the permutation only absorbed by the dense layer), the outputs differ."""
    from harness.backends.pytorch import builder

    spec = parse_spec(GRAPH_SPEC)
    if not keras_order:
        orders = builder.flat_feature_orders
        monkeypatch.setattr(builder, "flat_feature_orders",
                            lambda s: (orders(s)[0] | {3: builder._hwc_to_chw((4, 4, 3))},
                                       set()))
    weights = _scrambled(initial_weights(spec))
    keras_model, torch_model = keras_backend.build(spec), torch_backend.build(spec)
    keras_backend.set_weights(keras_model, weights)
    torch_backend.set_weights(torch_model, weights)
    x = _batch(spec)
    gap = np.abs(torch_backend.predict(torch_model, x) - keras_backend.predict(keras_model, x))
    if keras_order:
        assert gap.max() <= 1e-5
    else:
        assert gap.max() > 1e-3
