"""Compiled framework modes: `Backend.compiled` gives a twin with the same weights that runs
compiled (Keras jit_compile=True, XLA; PyTorch torch.compile, inductor), leaving the eager model
as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.data import load_arrays
from harness.spec import load_spec


def test_keras_compiled_twin_runs_xla_with_the_same_numbers(spec_files: dict[str, Path]) -> None:
    pytest.importorskip("tensorflow")
    from harness.backends import get_backend
    from harness.latency.native import result_device

    spec = load_spec(spec_files["tiny_mlp"])
    backend = get_backend("keras", threads=1)
    model = backend.build(spec)
    twin = backend.compiled(model)
    assert backend.compile_mode(model) == "graph" and backend.compile_mode(twin) == "xla"
    assert backend.environment()["compile_mode"] == "xla"
    x = load_arrays(spec.input, limit=1, limit_test=64).x_test
    np.testing.assert_allclose(backend.predict(twin, x), backend.predict(model, x), atol=1e-5)
    predictor = backend.native_predictor(twin, x[:4])
    assert result_device(predictor()) == "CPU:0"


def test_torch_compiled_twin_is_compiled_and_the_eager_model_is_not(
        spec_files: dict[str, Path]) -> None:
    """Compilation itself happens at the first call (timed in the bench tests); here only what
    `compiled` sets up, which costs nothing."""
    pytest.importorskip("torch")
    from harness.backends import get_backend

    spec = load_spec(spec_files["tiny_mlp"])
    backend = get_backend("torch", threads=1)
    model = backend.build(spec)
    twin = backend.compiled(model)
    assert twin.net._compiled_call_impl is not None and model.net._compiled_call_impl is None
    assert backend.environment()["compile_mode"] == "torch.compile"
    for key, value in backend.get_weights(model).items():
        np.testing.assert_array_equal(backend.get_weights(twin)[key], value)


def test_a_backend_without_a_compiled_mode_says_so() -> None:
    from types import SimpleNamespace

    from harness.backends import Backend, BackendUnavailable

    with pytest.raises(BackendUnavailable, match="'plain' has no compiled mode"):
        Backend.compiled(SimpleNamespace(name="plain"), object())


def _train(spec_file: Path, backend: str, compile_mode: str, out: Path) -> dict[str, np.ndarray]:
    from harness.spec.initializers import load_weights
    from harness.training import FINAL_WEIGHTS_FILE, TrainConfig, train_and_evaluate

    outcome = train_and_evaluate(spec_file, TrainConfig(
        backend=backend, epochs=2, limit=256, limit_test=64, threads=1, compile=compile_mode),
        out_dir=out)
    assert outcome.metrics["timing"]["first_epoch_seconds"] > 0  # compilation kept apart
    return {"mode": outcome.metrics["environment"]["backend"]["compile_mode"],
            **load_weights(str(out / FINAL_WEIGHTS_FILE))}


def _same_training(spec_file: Path, backend: str, compiled_mode: str, tmp_path: Path) -> None:
    eager = _train(spec_file, backend, "eager", tmp_path / "eager")
    compiled = _train(spec_file, backend, "compiled", tmp_path / "compiled")
    assert compiled.pop("mode") == compiled_mode and eager.pop("mode") != compiled_mode
    for key, value in eager.items():
        np.testing.assert_allclose(compiled[key], value, atol=1e-4)


@pytest.mark.slow  # TensorFlow's start and XLA compiling the train step: ~40 s on 2 cores
def test_keras_compiled_training_matches_eager(spec_files: dict[str, Path],
                                               tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    _same_training(spec_files["tiny_mlp"], "keras", "xla", tmp_path)


@pytest.mark.slow  # inductor compiles the forward and backward graphs: about a minute on 2 cores
def test_torch_compiled_training_matches_eager(spec_files: dict[str, Path],
                                               tmp_path: Path) -> None:
    pytest.importorskip("torch")
    _same_training(spec_files["tiny_mlp"], "torch", "torch.compile", tmp_path)
