"""Keras 3 on JAX and on PyTorch: the guarantees of the `keras` (TensorFlow) backend, each run
in a process of its own (a process holds one Keras backend).

Against native PyTorch, which every process can hold: the same parameter counts, weights and
outputs on every zoo spec (1e-5), the same weights after 8 float64 training steps of every
optimizer, ONNX files with the harness's interface; and the rules of one Keras backend per
process, of missing frameworks, threads, compile modes and records.

Functions named `worker_*` run where the backend can (`backend_call`): module level, and
this module imports no framework at its top, so a worker importing it keeps its own Keras.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.backends import Backend, get_backend
from harness.data import load_arrays
from harness.spec import infer, initial_weights, list_specs, load_spec, parse_spec
from harness.spec.initializers import Weights

REPO = Path(__file__).resolve().parents[2]
KERAS_BACKENDS = ("keras-jax", "keras-torch")
# a few specs whose layers are every zoo layer: BN on the input, avg pools with stride 1, 'same'
# convs (lenet5_bn_all); max pools, dropout, relu (cnn2_k3_keras_example); BN in an MLP (mlp5_bn)
EXPORT_SPECS = ("lenet5_bn_all", "cnn2_k3_keras_example", "mlp5_bn")


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


def worker_train_steps(name: str, spec_text: str, steps: int, batch: int) -> dict[str, Any]:
    """`steps` float64 steps from the initial weights over the first images in a fixed order."""
    backend, spec = _backend(name, "float64"), parse_spec(spec_text)
    arrays = load_arrays(spec.input, limit=steps * batch, limit_test=10)
    order = np.random.default_rng(0).permutation(steps * batch)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    result = backend.train_epoch(model, backend.to_native(arrays.x_train, arrays.y_train),
                                 order, batch)
    return {"weights": backend.get_weights(model), "loss": result.loss,
            "accuracy": result.accuracy}


@pytest.fixture(scope="module")
def float64_call() -> Any:
    """Like `backend_call`, with float64 workers apart: JAX's 64-bit mode, once switched on,
    holds for its whole process."""
    from harness.backends import not_installed
    from harness.backends.isolation import BackendProcess

    workers: dict[str, BackendProcess] = {}

    def call(name: str, *args: Any) -> Any:
        missing = not_installed(name)
        if missing:
            pytest.skip(missing)
        if name == "torch":
            return worker_train_steps(name, *args)
        if name not in workers:
            workers[name] = BackendProcess()
        return workers[name].call(__name__, worker_train_steps.__name__, name, *args)

    yield call
    for worker in workers.values():
        worker.close()


@pytest.mark.parametrize("name", KERAS_BACKENDS)
@pytest.mark.parametrize("label", ["sgd_nesterov", "adam", "adadelta", "rmsprop_centered",
                                   "adagrad", "nadam"])
def test_same_training_steps_give_same_weights_as_torch(label: str, name: str,
                                                        float64_call: Any) -> None:
    """tests/backends/test_parity.py's float64 check (Keras on TensorFlow vs PyTorch) for the
    other Keras backends: same start, same batches, no dropout, BN and 'same' paddings."""
    from test_parity import BATCH, CONSTANT_RTOL, FLOAT64_RTOL, OPTIMIZERS, STEPS, TRAIN_SPEC

    spec_text = TRAIN_SPEC.format(label=label, optimizer=OPTIMIZERS[label])
    got = float64_call(name, spec_text, STEPS, BATCH)
    reference = float64_call("torch", spec_text, STEPS, BATCH)
    start = initial_weights(parse_spec(spec_text))
    assert not np.allclose(got["weights"]["4.kernel"], start["4.kernel"])  # training moved it
    rtol = CONSTANT_RTOL.get(label, FLOAT64_RTOL)
    for key, value in reference["weights"].items():
        assert got["weights"][key].dtype == np.float64, key
        np.testing.assert_allclose(got["weights"][key], value, rtol=rtol, atol=rtol * 1e-2,
                                   err_msg=f"{name} {label}: {key}")
    # Keras' metrics are float32 whatever the model's dtype
    assert got["loss"] == pytest.approx(reference["loss"], rel=1e-6)
    assert got["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-6)


# --------------------------------------------------------------------------- ONNX


def worker_export(name: str, spec_name: str, folder: Path) -> dict[str, Any]:
    """Export with the backend's converter, check the file, compare ONNX Runtime at batch 1
    and 7 with the native outputs."""
    from harness.exporting import convert_to_onnx, onnx_parity
    from harness.onnx_io import DEFAULT_OPSET

    backend, spec = _backend(name), load_spec(spec_name)
    model = backend.build(spec)
    backend.set_weights(model, _scrambled(initial_weights(spec)))
    path = Path(folder) / f"{spec_name}.{name}.onnx"
    info = convert_to_onnx(backend, model, spec, path, DEFAULT_OPSET)
    arrays = load_arrays(spec.input, limit=1, limit_test=64)
    return {"info": info, "parity": onnx_parity(backend, model, path, arrays.x_test,
                                                arrays.y_test)}


def _check_export(name: str, spec_name: str, folder: Path, backend_call: Any) -> None:
    result = backend_call(name, worker_export, name, spec_name, folder)
    info, parity = result["info"], result["parity"]
    # the interface (one `input`, one `probabilities`, symbolic batch) is part of the checks
    assert info["shape_inference"] == "passed (strict)" and info["nodes"] > 0
    worst = max(parity["max_abs_diff"], *parity["batch_max_abs_diff"].values())
    assert worst <= 1e-5, parity
    assert parity["onnx_accuracy"] == parity["native_accuracy"]


@pytest.mark.parametrize("name", KERAS_BACKENDS)
@pytest.mark.parametrize("spec_name", EXPORT_SPECS)
def test_exports_pass_the_checks_and_match_onnx_runtime(spec_name: str, name: str,
                                                        backend_call: Any,
                                                        tmp_path: Path) -> None:
    _check_export(name, spec_name, tmp_path, backend_call)


@pytest.mark.slow
@pytest.mark.parametrize("name", KERAS_BACKENDS)
@pytest.mark.parametrize("spec_name", [s for s in list_specs() if s not in EXPORT_SPECS])
def test_every_zoo_spec_exports(spec_name: str, name: str, backend_call: Any,
                                tmp_path: Path) -> None:
    _check_export(name, spec_name, tmp_path, backend_call)
