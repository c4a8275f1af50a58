"""Keras 3 on JAX and on PyTorch: the guarantees of the `keras` (TensorFlow) backend, each run
in a process of its own (a process holds one Keras backend).

Against native PyTorch, which every process can hold: the same parameter counts, weights and
outputs on every zoo spec (1e-5), the same weights after 8 training steps (as close as Keras
on these backends computes, see SCALE_TOLERANCE). The rules of one Keras backend per process,
missing frameworks, threads, compile modes, records, native predictors and the spec Keras on
PyTorch refuses: test_keras_processes.py; their ONNX exports: tests/test_exporting.py; the spec
vocabulary: tests/test_vocabulary.py (both parametrized from the backend registry).

Functions named `worker_*` run where the backend can (`backend_call`): module level, and
this module imports no framework at its top, so a worker importing it keeps its own Keras.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

from harness.backends import Backend, get_backend
from harness.data import load_arrays
from harness.spec import infer, initial_weights, list_specs, load_spec, parse_spec
from harness.spec.initializers import Weights

KERAS_BACKENDS = ("keras-jax", "keras-torch")


@cache
def _backend(name: str, dtype: str = "float32") -> Backend:
    """One backend object per process (this one, or a backend's worker)."""
    return get_backend(name, dtype=dtype)


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


def worker_forward(name: str, spec_name: str) -> dict[str, Any]:
    """Parameter counts, the weights read back, and probabilities on 32 test images."""
    backend, spec = _backend(name), load_spec(spec_name)
    model = backend.build(spec)
    weights = _scrambled(initial_weights(spec))
    backend.set_weights(model, weights)
    read_back = backend.get_weights(model)
    x = load_arrays(spec.input, limit=32, limit_test=32).x_test
    return {"counts": backend.count_params(model),
            "round_trip": sorted(read_back) == sorted(weights) and all(
                np.array_equal(read_back[key], value) for key, value in weights.items()),
            "probabilities": backend.predict(model, x)}


@pytest.mark.parametrize("name", KERAS_BACKENDS)
@pytest.mark.parametrize("spec_name", list_specs())
def test_same_counts_weights_and_outputs_as_torch(spec_name: str, name: str,
                                                  backend_call: Any) -> None:
    result = backend_call(name, worker_forward, name, spec_name)
    reference = backend_call("torch", worker_forward, "torch", spec_name)
    summary = infer(load_spec(spec_name))
    assert result["counts"] == (summary.trainable_params, summary.non_trainable_params)
    assert result["round_trip"]
    assert result["probabilities"].shape == (32, 10)
    np.testing.assert_allclose(result["probabilities"], reference["probabilities"], rtol=0,
                               atol=1e-5)


# --------------------------------------------------------------------------- training steps

# tests/backends/test_parity.py's spec, its first average pool 'valid': Keras on PyTorch
# refuses a 'same' one that pads asymmetrically (harness.backends.keras_common.differs_on_torch).
TRAIN_SPEC = """\
name: steps_{label}
input: {{shape: [28, 28, 1]}}
layers:
  - {{type: conv2d, filters: 4, kernel_size: 4, padding: same, activation: tanh}}
  - {{type: avgpool2d, pool_size: 3, strides: 2, padding: valid}}
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
STEPS, BATCH = 8, 50
# No exact comparison is possible: in a float64 model Keras 3 on JAX and on PyTorch still
# compute some operations in float32 (its type promotion turns float64 into float32 off
# TensorFlow, keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE), and XLA's CPU tanh is
# float32-accurate. 8 steps then differ from PyTorch's by about 1e-5 of each array's scale; an
# optimizer hyperparameter 0.1% off moves them by 1e-3 and more (the negative control below).
SCALE_TOLERANCE = 1e-4


def worker_train_steps(name: str, spec_text: str, change: dict[str, float] | None = None
                       ) -> dict[str, Any]:
    """STEPS float64 steps from the initial weights over the first images in a fixed order;
    `change`: torch optimizer hyperparameters to set first (negative controls)."""
    backend, spec = _backend(name, "float64"), parse_spec(spec_text)
    arrays = load_arrays(spec.input, limit=STEPS * BATCH, limit_test=10)
    order = np.random.default_rng(0).permutation(STEPS * BATCH)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    if change:
        model.optimizer.param_groups[0].update(change)
    result = backend.train_epoch(model, backend.to_native(arrays.x_train, arrays.y_train),
                                 order, BATCH)
    return {"weights": backend.get_weights(model), "loss": result.loss,
            "accuracy": result.accuracy}


@pytest.fixture(scope="module")
def float64_call() -> Any:
    """Like `backend_call`, with float64 workers apart: JAX's 64-bit mode, once switched on,
    holds for its whole process."""
    from harness.backends import not_installed
    from harness.backends.isolation import BackendProcess

    workers: dict[str, BackendProcess] = {}
    results: dict[str, Any] = {}  # by call: the negative control reuses a run

    def call(name: str, *args: Any) -> Any:
        missing = not_installed(name)
        if missing:
            pytest.skip(missing)
        key = repr((name, args))
        if key in results:
            return results[key]
        if name == "torch":
            results[key] = worker_train_steps(name, *args)
            return results[key]
        if name not in workers:
            workers[name] = BackendProcess()
        results[key] = workers[name].call(__name__, worker_train_steps.__name__, name, *args)
        return results[key]

    yield call
    for worker in workers.values():
        worker.close()


def _spec_text(label: str, schedule: str | None = None) -> str:
    """`schedule`: a key of test_schedule_parity.SCHEDULES counted in steps (the workers build
    without an epoch length)."""
    from test_parity import OPTIMIZERS  # every optimizer, dyadic hyperparameters
    from test_schedule_parity import SCHEDULES

    text = TRAIN_SPEC.format(label=label, optimizer=OPTIMIZERS[label])
    return text + (f"  schedule: {SCHEDULES[schedule]}\n" if schedule else "")


def _assert_close(got: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                  what: str) -> None:
    for key, value in reference.items():
        assert got[key].dtype == np.float64, key
        np.testing.assert_allclose(got[key], value, rtol=0,
                                   atol=SCALE_TOLERANCE * np.abs(value).max(),
                                   err_msg=f"{what}: {key}")


@pytest.mark.parametrize("name", KERAS_BACKENDS)
@pytest.mark.parametrize("label", ["sgd_nesterov", "adam", "adadelta"])
def test_same_training_steps_give_the_same_weights_as_torch(label: str, name: str,
                                                            float64_call: Any) -> None:
    """Same start, same batches, no dropout, BN and a 'same' convolution: after 8 steps the
    weights and BN statistics are PyTorch's, to SCALE_TOLERANCE. Keras' optimizers are the same
    code on every Keras backend (each one is checked against PyTorch on TensorFlow in
    test_parity.py, and on every backend in test_vocabulary.py); these cover momentum with
    Nesterov, Adam's moments and Adadelta's accumulators (an XLA compilation each on JAX)."""
    got = float64_call(name, _spec_text(label))
    reference = float64_call("torch", _spec_text(label))
    start = initial_weights(parse_spec(_spec_text(label)))
    assert not np.allclose(got["weights"]["4.kernel"], start["4.kernel"])  # training moved it
    assert not np.allclose(got["weights"]["5.moving_variance"], start["5.moving_variance"])
    _assert_close(got["weights"], reference["weights"], f"{name} {label}")
    assert got["loss"] == pytest.approx(reference["loss"], rel=1e-6)
    assert got["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-6)


@pytest.mark.parametrize("name", KERAS_BACKENDS)
@pytest.mark.parametrize(("label", "schedule"), [("sgd_momentum", "exponential"),
                                                 ("adamw", "cosine")])
def test_a_schedule_gives_the_same_weights_as_torch(label: str, schedule: str, name: str,
                                                    float64_call: Any) -> None:
    """Keras' optimizer evaluating the harness's schedule on JAX and on PyTorch (a new rate
    at every step; SGD's momentum and AdamW's decay take it) against PyTorch's per-step rate;
    exactly, on TensorFlow: test_schedule_parity.py."""
    got = float64_call(name, _spec_text(label, schedule))
    reference = float64_call("torch", _spec_text(label, schedule))
    _assert_close(got["weights"], reference["weights"], f"{name} {label} {schedule}")
    constant = float64_call("torch", _spec_text(label))
    with pytest.raises(AssertionError, match=label):  # the schedule changed the weights
        _assert_close(got["weights"], constant["weights"], f"{name} {label} constant")


@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_training_step_check_detects_a_slightly_wrong_hyperparameter(name: str,
                                                                     float64_call: Any) -> None:
    """Negative control: PyTorch's Adadelta with rho 0.1% off must fail the comparison."""
    got = float64_call(name, _spec_text("adadelta"))
    wrong = float64_call("torch", _spec_text("adadelta"), {"rho": 0.9365})
    with pytest.raises(AssertionError, match="adadelta"):
        _assert_close(got["weights"], wrong["weights"], f"{name} adadelta")
