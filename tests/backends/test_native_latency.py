"""Native predictors: the same probabilities as `predict`, input on the device, timeable."""

from __future__ import annotations

import numpy as np
import pytest

from harness.backends import Backend, BackendUnavailable, get_backend
from harness.measure.timing import measure
from harness.spec import ModelSpec, initial_weights, parse_spec

# Image input, conv + BN + dropout: layout, inference-mode statistics and dropout all matter.
SMALL_CNN = parse_spec("""
name: small_cnn
input: {shape: [28, 28, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same, activation: relu}
  - {type: batchnorm, momentum: 0.9, epsilon: 0.001}
  - {type: maxpool2d, pool_size: 2}
  - {type: flatten}
  - {type: dropout, rate: 0.5}
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: sgd, learning_rate: 0.01, momentum: 0.0, nesterov: false}
  batch_size: 32
  epochs: 1
""")
FRAMEWORKS = {"torch": "torch", "keras": "tensorflow"}
FAST = {"warmup": 2, "min_runs": 5, "min_seconds": 0.0}


def _weights(spec: ModelSpec) -> dict[str, np.ndarray]:
    """Non-trivial BN statistics, so inference mode is visible in the outputs."""
    rng = np.random.default_rng(0)
    weights = dict(initial_weights(spec))
    for key, value in weights.items():
        if key.endswith(("moving_mean", "beta")):
            weights[key] = rng.normal(0, 0.3, value.shape).astype(np.float32)
        elif key.endswith(("moving_variance", "gamma")):
            weights[key] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    return weights


def _backend(name: str, device: str = "cpu") -> Backend:
    pytest.importorskip(FRAMEWORKS[name])
    try:
        return get_backend(name, device=device)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))


def _to_numpy(result: object) -> np.ndarray:
    if hasattr(result, "detach"):  # torch.Tensor, possibly on a GPU
        return result.detach().cpu().numpy()
    return np.asarray(result.numpy())  # type: ignore[attr-defined]


def _check_predictor(backend: Backend, x: np.ndarray) -> np.ndarray:
    model = backend.build(SMALL_CNN)
    backend.set_weights(model, _weights(SMALL_CNN))
    predictor = backend.native_predictor(model, x)
    first, second = _to_numpy(predictor()), _to_numpy(predictor())
    np.testing.assert_array_equal(first, second)  # inference mode: dropout off
    expected = backend.predict(model, x, batch_size=len(x))
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-6)
    stats = measure(predictor, batch_size=len(x), **FAST)
    assert stats.runs >= FAST["min_runs"] and stats.batch_size == len(x)
    assert 0 < stats.p50_ms <= stats.max_ms
    return first


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(1).random((16, 28, 28, 1), dtype=np.float32)


@pytest.mark.parametrize("name", ["torch", "keras"])
def test_native_predictor_matches_predict(name: str, batch: np.ndarray) -> None:
    _check_predictor(_backend(name), batch)


def test_torch_predictor_input_is_on_the_device(batch: np.ndarray) -> None:
    backend = _backend("torch")
    model = backend.build(SMALL_CNN)
    model.net.train()
    result = backend.native_predictor(model, batch)()
    assert not model.net.training  # the predictor switched to inference mode
    assert result.device.type == "cpu" and not result.requires_grad


def test_keras_predictor_runs_on_the_backend_device(batch: np.ndarray) -> None:
    backend = _backend("keras")
    model = backend.build(SMALL_CNN)
    result = backend.native_predictor(model, batch)()
    assert "CPU" in result.device.upper()


def test_both_frameworks_agree(batch: np.ndarray) -> None:
    torch_probs = _check_predictor(_backend("torch"), batch)
    keras_probs = _check_predictor(_backend("keras"), batch)
    np.testing.assert_allclose(torch_probs, keras_probs, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["torch", "keras"])
def test_native_predictor_on_cuda(name: str, batch: np.ndarray) -> None:
    _check_predictor(_backend(name, device="cuda"), batch)
