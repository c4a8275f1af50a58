"""ONNX export of every backend, with proof that the numbers survive.

Parametrized from the zoo and the backend registry: a new spec or backend is exported and
checked with no new test code. Each backend runs where it can (`backend_call`: a Keras backend
this process cannot hold runs in a worker process), so the functions it runs are module level.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from harness.backends import REGISTRY, Backend, get_backend  # noqa: E402
from harness.backends.onnx_io import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, check_file  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.data import load_arrays  # noqa: E402
from harness.export.driver import export_model  # noqa: E402
from harness.ort import create_session  # noqa: E402
from harness.spec import initial_weights, list_specs, load_spec  # noqa: E402
from harness.training import TrainConfig, train_and_evaluate  # noqa: E402

# Every zoo spec through Keras' JAX and PyTorch backends is slow (a worker process each, XLA
# compilations, a Keras-on-TensorFlow conversion for JAX): these specs, which hold every zoo
# layer between them, run always; the rest are marked slow.
QUICK_SPECS = ("lenet5_bn_all", "cnn2_k3_keras_example", "mlp5_bn")
SLOW_BACKENDS = ("keras-jax", "keras-torch")
ZOO_CASES = [pytest.param(spec, backend, id=f"{spec}-{backend}",
                          marks=[pytest.mark.slow] if backend in SLOW_BACKENDS
                          and spec not in QUICK_SPECS else [])
             for spec in list_specs() for backend in REGISTRY]


@cache
def _backend(name: str) -> Backend:
    """One backend object per process (this one, or a backend's worker)."""
    return get_backend(name)


def export_and_run(backend_name: str, spec_name: str, folder: Path) -> dict[str, Any]:
    """Export with initial weights, check the file, run it at batch 1 and 7 in ONNX Runtime."""
    backend = _backend(backend_name)
    spec = load_spec(spec_name)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    path = folder / f"{spec_name}.{backend_name}.onnx"
    backend.export_onnx(model, path, DEFAULT_OPSET)
    info = check_file(path, tuple(spec.input.shape))  # full checker + strict shape inference
    session = create_session(path, "cpu")
    x = load_arrays(spec.input, limit=1, limit_test=7).x_test
    return {"info": info, "inputs": [i.name for i in session.get_inputs()],
            "outputs": [o.name for o in session.get_outputs()],
            "native": backend.predict(model, x),
            "onnx": [session.run(None, {INPUT_NAME: batch})[0] for batch in (x[:1], x)]}


@pytest.mark.parametrize(("spec_name", "backend_name"), ZOO_CASES)
def test_every_spec_exports_and_runs_in_onnxruntime(spec_name: str, backend_name: str,
                                                    backend_call: Any, tmp_path: Path) -> None:
    result = backend_call(backend_name, export_and_run, backend_name, spec_name, tmp_path)
    assert result["info"]["opset"] == DEFAULT_OPSET and result["info"]["nodes"] > 0
    assert result["inputs"] == [INPUT_NAME] and result["outputs"] == [OUTPUT_NAME]
    native = result["native"]
    for onnx_out, size in zip(result["onnx"], (1, 7), strict=True):  # batch 1 and 7, one file
        assert onnx_out.shape == (size, 10)
        np.testing.assert_allclose(onnx_out, native[:size], rtol=0, atol=1e-5)


def reference_evaluator_run(backend_name: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """onnx's own ReferenceEvaluator on the file, and the native outputs."""
    from onnx.reference import ReferenceEvaluator

    backend = _backend(backend_name)
    spec = load_spec("lenet5_bn_all")  # conv, BN, tanh, avg pools with stride 1 and 2, dense
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    path = folder / "model.onnx"
    backend.export_onnx(model, path, DEFAULT_OPSET)
    x = load_arrays(spec.input, limit=1, limit_test=3).x_test
    (reference,) = ReferenceEvaluator(str(path)).run(None, {INPUT_NAME: x})
    return reference, backend.predict(model, x)


@pytest.mark.parametrize("backend_name", list(REGISTRY))
def test_third_party_reference_evaluator_agrees(backend_name: str, backend_call: Any,
                                                tmp_path: Path) -> None:
    """onnx's own ReferenceEvaluator opens the file unchanged and gives the same outputs."""
    reference, native = backend_call(backend_name, reference_evaluator_run, backend_name,
                                     tmp_path)
    np.testing.assert_allclose(reference, native, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp("keras-run")
    train_and_evaluate("mlp3_bn", TrainConfig(backend="keras", epochs=1, limit=2000,
                                              limit_test=1000), out_dir=out)
    return out


@pytest.mark.parametrize("backend_name", list(REGISTRY))
def test_trained_run_round_trips_through_export(keras_run: Path, backend_name: str,
                                                backend_call: Any, tmp_path: Path) -> None:
    """A Keras-trained run exported through any backend keeps its test accuracy."""
    out = tmp_path / f"mlp3_bn.{backend_name}.onnx"
    record = backend_call(backend_name, export_model, None, backend_name, out,
                          run_dir=keras_run, limit_test=1000)
    trained = json.loads((keras_run / "metrics.json").read_text())
    parity = record["parity"]
    assert record["passed"] and parity["max_abs_diff"] < 1e-5
    assert parity["onnx_accuracy"] == parity["native_accuracy"]
    assert parity["native_accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-6)
    assert record["weights"]["trained_backend"] == "keras"
    written = json.loads(out.with_name(out.name + ".json").read_text())
    assert written["onnx"]["sha256"] == record["onnx"]["sha256"]
    exports = {e["path"]: e for e in json.loads((keras_run / "metrics.json").read_text())
               ["exports"]}
    assert exports[str(out.resolve())]["passed"] is True


def test_cli_export_without_run_uses_initial_weights(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "cnn3_k3.torch.onnx"
    assert main(["export", "--backend", "torch", "--spec", "cnn3_k3", "--out", str(out),
                 "--limit-test", "500"]) == 0
    printed = capsys.readouterr().out
    assert "initial weights" in printed and "checker and shape inference passed" in printed
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["weights"]["source"] == "initial" and record["onnx"]["opset"] == DEFAULT_OPSET
    assert record["parity"]["provider"] == "CPUExecutionProvider"


def test_converter_failure_is_one_message_with_a_log(tmp_path: Path, monkeypatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from harness.backends.pytorch import backend as torch_backend

    def broken(self, model, path, opset):
        raise RuntimeError("Unsupported operator aten::frobnicate\nmore converter noise")

    monkeypatch.setattr(torch_backend.TorchBackend, "export_onnx", broken)
    out = tmp_path / "m.onnx"
    assert main(["export", "--backend", "torch", "--spec", "mlp2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "spec 'mlp2'" in err and "backend 'torch'" in err and "torch.onnx (dynamo)" in err
    assert "aten::frobnicate" in err and "Traceback" not in err
    log = out.with_name("m.onnx.log")
    assert "Traceback" in log.read_text() and not out.exists()


def test_parity_failure_exits_non_zero(tmp_path: Path, monkeypatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from harness.backends.pytorch import backend as torch_backend

    real_predict = torch_backend.TorchBackend.predict

    def drifting(self, model, x, batch_size=256):
        return real_predict(self, model, x, batch_size) + np.float32(1e-3)

    monkeypatch.setattr(torch_backend.TorchBackend, "predict", drifting)
    out = tmp_path / "m.onnx"
    assert main(["export", "--backend", "torch", "--spec", "mlp2", "--out", str(out),
                 "--limit-test", "100"]) == 1
    assert "parity failed" in capsys.readouterr().err
    assert json.loads(out.with_name("m.onnx.json").read_text())["passed"] is False


def test_export_from_a_run_checks_onnx_against_the_runs_own_outputs(tmp_path: Path) -> None:
    """The run's recorded test-set probabilities are the native side of the parity check (no
    second pass), and the check fails when they disagree with the exported file; a damaged
    record, or an export through another backend, predicts them again."""
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    run = tmp_path / "run"
    train_and_evaluate("mlp2", TrainConfig(backend="torch", epochs=1, limit=500,
                                           limit_test=200, threads=1), out_dir=run)
    outputs = run / "test_outputs.npz"

    def export() -> dict[str, Any]:
        return export_model(None, "torch", tmp_path / "m.onnx", run_dir=run, limit_test=200,
                            threads=1)

    record = export()
    assert record["passed"] and record["parity"]["native_outputs"] == "training run"
    with np.load(outputs) as recorded:
        probabilities, labels = recorded["probabilities"], recorded["labels"]
    np.savez(outputs, probabilities=probabilities + np.float32(1e-3), labels=labels)
    drifted = export()
    assert not drifted["passed"] and drifted["parity"]["max_abs_diff"] >= 9e-4
    outputs.write_bytes(b"not an npz file")
    damaged = export()
    assert damaged["passed"] and damaged["parity"]["native_outputs"] == "predicted"
    np.savez(outputs, probabilities=probabilities, labels=labels)
    assert export_model(None, "keras", tmp_path / "k.onnx", run_dir=run, limit_test=200,
                        threads=1)["parity"]["native_outputs"] == "predicted"


def test_cross_framework_parity_table(keras_run: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    pytest.importorskip("torch")
    # every backend's parity: tests/test_vocabulary.py (harness parity on a gelu spec)
    assert main(["parity", "--from", str(keras_run), "--limit-test", "500", "--backends",
                 "keras,torch"]) == 0
    out = capsys.readouterr().out
    for implementation in ("keras native", "torch native", "keras onnx", "torch onnx"):
        assert implementation in out
    assert "keras-trained" in out and "FAIL" not in out
