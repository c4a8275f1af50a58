"""Keras 3 (TensorFlow) backend: builds the spec's function and trains with the spec's maths."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from harness.backends import BackendUnavailable, get_backend  # noqa: E402
from harness.backends.keras_tf import KerasBackend  # noqa: E402
from harness.spec import (  # noqa: E402
    ModelSpec,
    infer,
    initial_weights,
    list_specs,
    load_spec,
    parse_spec,
)

REPO = Path(__file__).resolve().parents[2]

# Softmax regression: the simplest spec whose SGD steps can be replayed exactly in numpy.
SOFTMAX_REGRESSION = """
name: softmax_regression
input: {shape: [784]}
layers:
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: sgd, learning_rate: %(lr)s, momentum: 0.0, nesterov: false}
  batch_size: %(batch)s
  epochs: 1
"""

TINY_CNN = """
name: tiny_cnn
input: {shape: [28, 28, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same, activation: relu}
  - {type: batchnorm, momentum: 0.9, epsilon: 0.001}
  - {type: maxpool2d, pool_size: 2}
  - {type: avgpool2d, pool_size: 3, strides: 2, padding: same}
  - {type: flatten}
  - {type: dropout, rate: 0.2}
  - {type: dense, units: 16, use_bias: false, kernel_initializer: he_normal}
  - {type: activation, activation: tanh}
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: adam, learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1.0e-7}
  batch_size: 32
  epochs: 1
"""


@pytest.fixture(scope="module")
def backend() -> KerasBackend:
    return KerasBackend(device="cpu")


def _inputs(spec: ModelSpec, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *spec.input.shape), dtype=np.float32)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _ce(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """Exact categorical cross-entropy from logits, float64, no clipping."""
    logp = _log_softmax(x.astype(np.float64) @ w + b)
    return float(-logp[np.arange(len(y)), y].mean())


# --------------------------------------------------------------------------- every zoo spec


@pytest.mark.parametrize("name", list_specs())
def test_zoo_spec_builds_the_inferred_model(backend: KerasBackend, name: str) -> None:
    spec = load_spec(name)
    model = backend.build(spec)
    summary = infer(spec)
    assert backend.count_params(model) == (summary.trainable_params,
                                           summary.non_trainable_params)
    assert tuple(model.output_shape[1:]) == summary.output_shape

    weights = initial_weights(spec)
    backend.set_weights(model, weights)
    got = backend.get_weights(model)
    assert sorted(got) == sorted(weights)
    for key, value in weights.items():
        assert got[key].dtype == np.float32
        np.testing.assert_array_equal(got[key], value, err_msg=key)

    probs = backend.predict(model, _inputs(spec, 8), batch_size=4)
    assert probs.shape == (8, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------- structure


def test_registry_and_layer_names(backend: KerasBackend) -> None:
    assert isinstance(get_backend("keras"), KerasBackend)
    spec = parse_spec(TINY_CNN)
    model = backend.build(spec)
    assert [layer.name for layer in model.layers] == [
        f"l{i}_{layer.type}" for i, layer in enumerate(spec.layers)]
    assert backend.count_params(model) == (infer(spec).trainable_params,
                                           infer(spec).non_trainable_params)


def test_set_weights_rejects_mismatches(backend: KerasBackend) -> None:
    spec = parse_spec(TINY_CNN)
    model = backend.build(spec)
    weights = initial_weights(spec)
    with pytest.raises(KeyError, match="missing"):
        backend.set_weights(model, {k: v for k, v in weights.items() if k != "0.bias"})
    with pytest.raises(ValueError, match="shape"):
        backend.set_weights(model, {**weights, "0.bias": np.zeros(5, np.float32)})


def test_cpu_compile_mode_and_environment(backend: KerasBackend) -> None:
    model = backend.build(parse_spec(TINY_CNN))
    assert backend.compile_mode(model) == "graph"  # no XLA on device 'cpu'
    env = backend.environment()
    assert env["compile_mode"] == "graph" and env["device"] == "cpu"
    assert env["keras_backend"] == "tensorflow"
    for key in ("tensorflow", "keras", "gpus", "intra_op_threads", "inter_op_threads"):
        assert key in env


def test_environment_reads_the_switches_back_from_tensorflow(backend: KerasBackend) -> None:
    import tensorflow as tf

    cnn = backend.build(parse_spec(TINY_CNN))
    assert backend.environment()["layout"] == "channels_last"  # Keras' convolutions: NHWC
    assert backend.compile_mode(cnn) == "graph" and not cnn.jit_compile  # no XLA by default
    spec = parse_spec(SOFTMAX_REGRESSION % {"lr": 0.1, "batch": 8})
    backend.build(spec)
    assert backend.environment()["layout"] is None  # no convolution
    backend.to_native(_inputs(spec, 4), np.arange(4))
    assert backend.environment()["data_device"] == "CPU:0"
    assert backend.environment()["tf32"] is False  # the harness's policy, not TF's default
    try:
        tf.config.experimental.enable_tensor_float_32_execution(True)  # behind its back
        assert backend.environment()["tf32"] is True  # read back, not echoed
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(False)


def test_an_epoch_runs_keras_train_step_without_fit(backend: KerasBackend,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The timed epoch holds Keras' compiled steps only: `fit` and its per-call set-up (data
    adapter, tf.data, callbacks) are not part of it."""
    spec = parse_spec(SOFTMAX_REGRESSION % {"lr": 0.1, "batch": 8})
    model = backend.build(spec)

    def no_fit(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("fit called inside an epoch")

    monkeypatch.setattr(model, "fit", no_fit)
    data = backend.to_native(_inputs(spec, 20), np.arange(20) % 10)
    result = backend.train_epoch(model, data, np.arange(20), batch_size=8)
    assert int(model.optimizer.iterations.numpy()) == 3  # 8 + 8 + 4
    assert np.isfinite(result.loss) and result.seconds > 0


def test_cuda_without_gpu_is_unavailable() -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is present")
    with pytest.raises(BackendUnavailable, match="TensorFlow sees no GPU"):
        KerasBackend(device="cuda")


def test_save_round_trips(backend: KerasBackend, tmp_path: Path) -> None:
    import keras

    spec = parse_spec(TINY_CNN)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    x = _inputs(spec, 8)
    # Train a step first so the optimizer's state is saved and restored too.
    backend.train_epoch(model, backend.to_native(x, np.arange(8)), np.arange(8), batch_size=8)
    path = backend.save(model, tmp_path / "out")
    assert path == tmp_path / "out" / "model.keras" and path.is_file()
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), backend.predict(model, x), rtol=1e-6)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)


# --------------------------------------------------------------------------- training maths


def test_loss_is_cross_entropy_from_logits_without_clipping(backend: KerasBackend) -> None:
    """Keras 3 (TF) reads the logits cached on the softmax output (`_keras_logits`, see
    keras/src/backend/tensorflow/nn.py `_get_logits`) and calls
    tf.nn.softmax_cross_entropy_with_logits; the probability path with its 1e-7 clipping is not
    taken. A sample whose true class has p ~ e^-60 shows it: clipped CE would cap at ~16.1."""
    spec = parse_spec(SOFTMAX_REGRESSION % {"lr": "1.0e-9", "batch": 8})  # YAML reads 1e-09 as text
    model = backend.build(spec)
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.05, (784, 10)).astype(np.float32)
    b = np.zeros(10, np.float32)
    b[0] = 60.0  # every sample is confidently class 0
    x, y = _inputs(spec, 8), rng.integers(1, 10, 8)  # ... and labelled otherwise
    backend.set_weights(model, {"0.kernel": w, "0.bias": b})
    data = backend.to_native(x, y)
    expected = _ce(w, b, x, y)
    assert expected > 55  # far beyond -log(1e-7) = 16.1
    train = backend.train_epoch(model, data, np.arange(8), batch_size=8)
    assert train.loss == pytest.approx(expected, rel=1e-5)
    assert backend.evaluate(model, data, batch_size=8).loss == pytest.approx(expected, rel=1e-5)


def _replay_sgd(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, order: np.ndarray,
                batch: int, lr: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Plain SGD on mean CE in numpy, batch by batch in `order`; epoch loss/accuracy as Keras
    reports them (per-batch values before each step, weighted by batch size)."""
    w, b = w.astype(np.float64), b.astype(np.float64)
    loss_sum = correct = 0.0
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        xb, yb = x[idx].astype(np.float64), y[idx]
        logits = xb @ w + b
        loss_sum += _ce(w, b, xb, yb) * len(idx)
        correct += float((logits.argmax(axis=1) == yb).sum())
        delta = np.exp(_log_softmax(logits))
        delta[np.arange(len(idx)), yb] -= 1.0
        w -= lr * xb.T @ delta / len(idx)
        b -= lr * delta.mean(axis=0)
    return w, b, loss_sum / len(order), correct / len(order)


def test_fit_takes_sgd_steps_in_exactly_the_given_order(backend: KerasBackend) -> None:
    """13 samples, batch 5 -> batches of 5, 5, 3 in `order`: the weights after one epoch match a
    numpy replay of that order (and differ from the replay of another order)."""
    lr, n, batch = 0.5, 13, 5
    spec = parse_spec(SOFTMAX_REGRESSION % {"lr": lr, "batch": batch})
    model = backend.build(spec)
    weights = initial_weights(spec)
    rng = np.random.default_rng(2)
    x, y = _inputs(spec, n, seed=3), rng.integers(0, 10, n)
    order = rng.permutation(n)
    backend.set_weights(model, weights)
    result = backend.train_epoch(model, backend.to_native(x, y), order, batch_size=batch)

    w, b, loss, accuracy = _replay_sgd(weights["0.kernel"], weights["0.bias"], x, y, order,
                                       batch, lr)
    got = backend.get_weights(model)
    np.testing.assert_allclose(got["0.kernel"], w, atol=2e-5)
    np.testing.assert_allclose(got["0.bias"], b, atol=2e-5)
    assert result.loss == pytest.approx(loss, rel=1e-5)
    assert result.accuracy == pytest.approx(accuracy)
    assert result.seconds > 0

    other, *_ = _replay_sgd(weights["0.kernel"], weights["0.bias"], x, y, order[::-1], batch, lr)
    assert np.abs(other - w).max() > 100 * 2e-5  # the check above can tell orders apart


def test_batchnorm_moving_variance_uses_the_biased_batch_variance(backend: KerasBackend) -> None:
    """Keras 3: moving = m * moving + (1 - m) * var(batch, ddof=0). (PyTorch's running_var and,
    I believe, Keras 2's fused kernel use ddof=1; the PyTorch backend must follow Keras 3.)"""
    spec = parse_spec("""
        name: bn_stats
        input: {shape: [784]}
        layers:
          - {type: batchnorm, momentum: 0.5, epsilon: 0.001}
          - {type: dense, units: 10, activation: softmax}
        train:
          optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}
          batch_size: 4
          epochs: 1
    """)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    x = _inputs(spec, 4)
    backend.train_epoch(model, backend.to_native(x, np.arange(4)), np.arange(4), batch_size=4)
    got = backend.get_weights(model)
    np.testing.assert_allclose(got["0.moving_mean"], 0.5 * x.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(got["0.moving_variance"], 0.5 + 0.5 * x.var(axis=0), atol=1e-6)


def test_nadam_momentum_schedule_is_keras3s() -> None:
    """Keras 3 Nadam: mu_t = beta_1 * (1 - 0.5 * 0.96 ** t), *without* Keras 2's 0.004 factor
    (PyTorch NAdam matches with momentum_decay=1.0, not its default 0.004)."""
    import keras

    from harness.backends.keras_common.builder import make_optimizer
    from harness.spec.schema import Nadam

    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-7
    optimizer = make_optimizer(Nadam(name="nadam", learning_rate=lr, beta_1=b1, beta_2=b2,
                                     epsilon=eps))
    variable = keras.Variable(np.zeros(3, np.float32))
    grads = [np.array([1.0, -2.0, 0.5], np.float32), np.array([0.3, 1.0, -1.0], np.float32)]
    w, m, v, mu_product = np.zeros(3), np.zeros(3), np.zeros(3), 1.0
    for t, g in enumerate(grads, start=1):
        optimizer.apply_gradients([(g, variable)])
        mu, mu_next = (b1 * (1 - 0.5 * 0.96 ** s) for s in (t, t + 1))
        mu_product *= mu
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat = mu_next * m / (1 - mu_product * mu_next) + (1 - mu) * g / (1 - mu_product)
        w -= lr * m_hat / (np.sqrt(v / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(variable.numpy(), w, rtol=1e-5, atol=1e-6)


def test_training_lowers_the_loss_on_separable_data(backend: KerasBackend) -> None:
    spec = parse_spec(TINY_CNN)
    backend.seed(0)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    rng = np.random.default_rng(4)
    y = rng.integers(0, 10, 256)
    x = rng.random((256, 28, 28, 1), dtype=np.float32) * 0.1
    for label in range(10):  # class k lights up row band k: trivially separable
        x[y == label, 2 * label + 4: 2 * label + 6, :, 0] += 1.0
    data = backend.to_native(x, y)
    before = backend.evaluate(model, data, batch_size=128).loss
    losses = [backend.train_epoch(model, data, rng.permutation(256), 32).loss for _ in range(3)]
    after = backend.evaluate(model, data, batch_size=128)
    assert losses[-1] < losses[0] and after.loss < before
    assert after.accuracy > 0.5


# --------------------------------------------------------------------------- process-level setup


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


def test_threads_are_set_before_the_runtime_starts_and_warn_after() -> None:
    result = _run_python("""
        import warnings
        import tensorflow as tf
        from harness.backends.keras_tf import KerasBackend
        backend = KerasBackend(threads=3)
        env = backend.environment()
        # the harness's one budget: N intra-op, 1 inter-op (as torch and ONNX Runtime get)
        assert (env["intra_op_threads"], env["inter_op_threads"]) == (3, 1), env
        tf.constant(1.0) + 1.0  # the runtime is initialised now
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            KerasBackend(threads=2)
        assert any("already initialised" in str(w.message) for w in caught), caught
        print("ok")
    """)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_refuses_keras_loaded_with_another_backend() -> None:
    pytest.importorskip("torch")
    result = _run_python("""
        import keras
        assert keras.backend.backend() == "torch"
        from harness.backends import BackendUnavailable
        try:
            import harness.backends.keras_tf
        except BackendUnavailable as exc:
            print("refused:", exc)
    """, KERAS_BACKEND="torch")
    assert "refused:" in result.stdout and "'torch' backend" in result.stdout, result.stderr[-2000:]
