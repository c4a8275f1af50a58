"""Keras 3 on JAX and on PyTorch: one Keras backend per process, missing frameworks, threads,
compile modes and what records say, native predictors, the spec Keras on PyTorch refuses, and
the worker processes that hold a backend this process cannot.

Functions named `worker_*` run where the backend can (`backend_call`), as in
test_keras_backends.py, whose helpers they share.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_keras_backends import KERAS_BACKENDS, _backend, _scrambled
from test_native_latency import SMALL_CNN  # image input, conv, BN and dropout

from harness.data import load_arrays
from harness.spec import initial_weights, load_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- one Keras per process


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600)


def _require(*names: str) -> None:
    from harness.backends import not_installed

    for name in names:
        missing = not_installed(name)
        if missing:
            pytest.skip(missing)


def test_a_process_with_keras_on_one_backend_refuses_the_others(tmp_path: Path) -> None:
    """Keras on PyTorch loaded: the TensorFlow and JAX Keras backends are refused with an error
    naming both backends, also for a training run (exit 3, nothing written)."""
    _require("keras-torch", "keras-jax")
    out = tmp_path / "run"
    result = _run_python(f"""
        from harness.backends import KerasBackendConflict, get_backend
        get_backend("keras-torch")
        import keras
        assert keras.backend.backend() == "torch"
        for other in ("keras", "keras-jax"):
            try:
                get_backend(other)
            except KerasBackendConflict as exc:
                print("refused", other, "|", exc)
        print("again", type(get_backend("keras-torch")).__name__)
        from harness.cli import main
        print("exit", main(["train", "--backend", "keras-jax", "--spec", "mlp2", "--epochs",
                            "1", "--limit", "100", "--limit-test", "100", "--out", {str(out)!r}]))
    """)
    lines = result.stdout.splitlines()
    refused = {line.split()[1]: line for line in lines if line.startswith("refused")}
    assert set(refused) == {"keras", "keras-jax"}, result.stderr[-3000:]
    assert "'torch' backend" in refused["keras"]
    assert "'keras' harness backend needs KERAS_BACKEND=tensorflow" in refused["keras"]
    assert "'keras-jax' harness backend needs KERAS_BACKEND=jax" in refused["keras-jax"]
    assert "again KerasTorchBackend" in lines and "exit 3" in lines
    assert "'keras-jax' harness backend" in result.stderr and "Traceback" not in result.stderr
    assert not (out / "metrics.json").exists()


def test_without_jax_keras_jax_is_refused_with_the_install_command() -> None:
    """Nothing half-imported either: keras still loads on another backend afterwards."""
    _require("keras-torch")
    result = _run_python("""
        import sys
        sys.modules["jax"] = None  # as if jax were not installed
        from harness.cli import main
        print("exit", main(["train", "--backend", "keras-jax", "--spec", "mlp2"]))
        from harness.backends import get_backend, not_installed
        print("reason", not_installed("keras-jax"))
        print("then", type(get_backend("keras-torch")).__name__)
    """)
    assert "exit 3" in result.stdout.splitlines(), result.stderr[-3000:]
    assert "pip install -e '.[keras-jax]'" in result.stderr and "jax" in result.stderr
    assert "reason backend 'keras-jax' needs jax, not installed" in result.stdout
    assert "then KerasTorchBackend" in result.stdout


# --------------------------------------------------------------------------- records, modes


def test_records_name_the_keras_backend_compile_mode_and_compile_time(
        backend_call: Any, tmp_path: Path) -> None:
    from harness.training import TrainConfig, train_and_evaluate

    expected = {"keras-jax": ("jax", "xla"), "keras-torch": ("torch", "eager")}
    for name, (keras_backend, mode) in expected.items():
        config = TrainConfig(backend=name, epochs=2, limit=200, limit_test=100, threads=2)
        metrics = backend_call(name, train_and_evaluate, "mlp2", config,
                               out_dir=tmp_path / name).metrics
        ran = metrics["environment"]["backend"]
        assert (metrics["backend"], ran["keras_backend"], ran["compile_mode"]) == (
            name, keras_backend, mode)
        # the first step of each batch shape (128 and the last 72), inside the first epoch
        assert 0 < ran["compile_seconds"] <= metrics["timing"]["first_epoch_seconds"]
        assert ran["intra_op_threads"] == 2
    assert ran["torch"] == metrics["environment"]["packages"]["torch"]
    jax_run = (tmp_path / "keras-jax" / "metrics.json").read_text()
    for key in ('"jax": ', '"jaxlib": '):  # the JAX versions, in the backend's own record
        assert key in jax_run


def worker_compiled(name: str) -> str | None:
    """Why the backend's compiled twin is refused, or None."""
    from harness.backends import BackendUnavailable

    backend = _backend(name)
    model = backend.build(load_spec("mlp2"))
    try:
        backend.compiled(model)
    except BackendUnavailable as exc:
        return str(exc)
    return None


def test_keras_on_jax_compiles_with_xla_by_default_and_has_no_further_mode(
        backend_call: Any) -> None:
    reason = backend_call("keras-jax", worker_compiled, "keras-jax")
    assert reason is not None and "already compiles every step by default (xla)" in reason


def worker_compilations_per_epoch(epochs: int) -> list[int]:
    """XLA compilations during each of `epochs` epochs of mlp2 in Keras on JAX."""
    import jax

    backend, spec = _backend("keras-jax"), load_spec("mlp2")
    compiled: list[str] = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, _seconds, **_: compiled.append(event) if "backend_compile" in event
        else None)
    arrays = load_arrays(spec.input, limit=300, limit_test=1)
    model = backend.build(spec)
    data = backend.to_native(arrays.x_train, arrays.y_train)
    counts = []
    for epoch in range(epochs):
        before = len(compiled)
        backend.train_epoch(model, data, np.random.default_rng(epoch).permutation(300), 128)
        counts.append(len(compiled) - before)
    return counts


def test_keras_on_jax_compiles_in_the_first_epoch_only(backend_call: Any) -> None:
    """The steady epochs reuse the first epoch's XLA programs (one per batch shape): the
    state an epoch starts from is placed as every step's result is."""
    first, *steady = backend_call("keras-jax", worker_compilations_per_epoch, 3)
    assert first > 0 and steady == [0, 0]


def test_keras_jax_threads_narrow_the_cores_before_the_runtime_starts() -> None:
    """XLA's CPU pool has no thread setting: a budget below the cores narrows the process's
    affinity first; asking for another count later warns, as TensorFlow's backend does."""
    _require("keras-jax")
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs a Linux process that may run on 2 cores or more")
    result = _run_python("""
        import os, warnings
        from harness.backends import get_backend
        env = get_backend("keras-jax", threads=1).environment()
        print("threads", env["intra_op_threads"], len(os.sched_getaffinity(0)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            get_backend("keras-jax", threads=2)
        print("warned", any("already initialised" in str(w.message) for w in caught))
    """)
    assert "threads 1 1" in result.stdout.splitlines(), result.stderr[-3000:]
    assert "warned True" in result.stdout


# --------------------------------------------------------------------------- native predictors

def _keras(name: str) -> Any:
    """keras, loaded on backend `name`'s Keras backend (selected before keras is imported)."""
    _backend(name)
    import keras

    return keras


def worker_native_predictor(name: str) -> dict[str, Any]:
    """Two predictor calls, `predict`, and where the predictor's result lies."""
    from harness.latency.native import result_device

    keras, backend, spec = _keras(name), _backend(name), SMALL_CNN
    model = backend.build(spec)
    backend.set_weights(model, _scrambled(initial_weights(spec)))
    x = np.random.default_rng(1).random((16, 28, 28, 1), dtype=np.float32)
    predictor = backend.native_predictor(model, x)
    first = predictor()
    return {"first": keras.ops.convert_to_numpy(first),
            "second": keras.ops.convert_to_numpy(predictor()),
            "predict": backend.predict(model, x, batch_size=16), "device": result_device(first)}


@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_native_predictor_matches_predict_on_the_cpu(name: str, backend_call: Any) -> None:
    from harness.latency.native import on_gpu

    result = backend_call(name, worker_native_predictor, name)
    np.testing.assert_array_equal(result["first"], result["second"])  # dropout off
    np.testing.assert_allclose(result["first"], result["predict"], rtol=1e-5, atol=1e-6)
    assert not on_gpu(result["device"]) and "cpu" in result["device"].lower()


# --------------------------------------------------------------------------- Keras on PyTorch

SAME_POOL = """
name: same_pool
input: {{shape: [28, 28, 1]}}
layers:
  - {{type: avgpool2d, pool_size: {pool}, strides: {stride}, padding: same}}
  - {{type: flatten}}
  - {{type: dense, units: 10, activation: softmax}}
train:
  optimizer: {{name: sgd, learning_rate: 0.01, momentum: 0.0, nesterov: false}}
  batch_size: 32
  epochs: 1
"""


def test_keras_on_torch_differs_only_on_asymmetric_same_average_pools() -> None:
    from harness.backends.keras_common import differs_on_torch

    asymmetric = parse_spec(SAME_POOL.format(pool=3, stride=2))  # 28 -> 14: 1 extra row
    assert differs_on_torch(asymmetric) == [
        "layers[0] (avgpool2d, padding 'same', padded top/bottom/left/right 0/1/0/1)"]
    assert differs_on_torch(parse_spec(SAME_POOL.format(pool=3, stride=1))) == []  # 1 and 1
    assert differs_on_torch(parse_spec(SAME_POOL.format(pool=2, stride=2))) == []  # none
    assert differs_on_torch(parse_spec(SAME_POOL.format(pool=3, stride=2).replace(
        "avgpool2d", "maxpool2d"))) == []


def worker_same_average_pool(size: int) -> np.ndarray:
    """Keras on PyTorch's own AveragePooling2D(3, strides=2, padding='same') on a size x size
    ramp."""
    keras = _keras("keras-torch")
    x = np.arange(size * size, dtype=np.float32).reshape(1, size, size, 1)
    pool = keras.layers.AveragePooling2D(3, strides=2, padding="same")
    return keras.ops.convert_to_numpy(pool(x))[0, :, :, 0]


def test_keras_on_torch_refuses_what_it_computes_otherwise(backend_call: Any) -> None:
    """The refusal stands on a real difference: on a 6x6 input the pool pads one row and column
    at the end, and Keras on PyTorch's last row and column differ from TensorFlow's (what the
    spec means; numpy here). When a Keras release agrees, this fails: drop the refusal then."""
    from harness.backends import BackendUnavailable

    x = np.arange(36, dtype=np.float64).reshape(6, 6)
    means = [[x[r:r + 3, c:c + 3].mean() for c in (0, 2, 4)] for r in (0, 2, 4)]  # real cells
    on_torch = backend_call("keras-torch", worker_same_average_pool, 6)
    assert np.allclose(on_torch[:2, :2], np.array(means)[:2, :2])
    assert not np.allclose(on_torch, means)
    with pytest.raises(BackendUnavailable, match=r"cannot build spec 'same_pool'.*layers\[0\]"):
        backend_call("keras-torch", worker_forward_text, "keras-torch",
                     SAME_POOL.format(pool=3, stride=2))


def worker_forward_text(name: str, spec_text: str) -> np.ndarray:
    backend, spec = _backend(name), parse_spec(spec_text)
    return backend.predict(backend.build(spec), np.zeros((1, 28, 28, 1), np.float32))


# --------------------------------------------------------------------------- worker processes


def test_a_worker_returns_results_and_raises_the_workers_errors() -> None:
    from harness.backends.isolation import BackendProcess, WorkerError

    with BackendProcess() as worker:
        assert worker.call("math", "sqrt", 6.25) == 2.5
        with pytest.raises(ValueError, match="math domain error") as caught:
            worker.call("math", "sqrt", -1.0)
        assert isinstance(caught.value.__cause__, WorkerError)
        assert "Traceback" in str(caught.value.__cause__)
        assert worker.call("operator", "add", 2, 3) == 5  # still serving after an error
        with pytest.raises(RuntimeError, match="exited with status 7 before answering"):
            worker.call("os", "_exit", 7)
