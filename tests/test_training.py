"""A short training run learns well above chance in both backends and records what it did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.backends import REGISTRY, get_backend, not_installed
from harness.data import load_arrays
from harness.records import folders
from harness.records.io import write_json_atomic
from harness.spec import initial_weights, parse_spec
from harness.training import (
    EPOCH_TIMING,
    EpochRecord,
    TrainConfig,
    confusion_matrix,
    epoch_timing,
    train_and_evaluate,
)
from harness.training.loop import _run_epochs


def _require(backend: str) -> None:
    missing = not_installed(backend)
    if missing:
        pytest.skip(missing)


# The CNN on Keras' JAX and PyTorch backends is slow (their own processes, XLA compilations);
# their model and training maths are checked on every zoo spec in tests/backends.
LEARNING_CASES = [
    pytest.param(backend, spec, limit, accuracy, id=f"{spec}-{limit}-{accuracy}-{backend}",
                 marks=[pytest.mark.slow] if spec.startswith("cnn")
                 and backend in ("keras-jax", "keras-torch") else [])
    for spec, limit, accuracy in [("mlp2", 3000, 0.5), ("cnn2_k3_keras_example", 3000, 0.6)]
    for backend in REGISTRY]


@pytest.mark.parametrize(("backend", "spec", "limit", "min_accuracy"), LEARNING_CASES)
def test_one_epoch_learns_well_above_chance(backend: str, spec: str, limit: int,
                                            min_accuracy: float, tmp_path: Path,
                                            backend_call: Any) -> None:
    _require(backend)
    config = TrainConfig(backend=backend, epochs=1, limit=limit, limit_test=2000, threads=2)
    outcome = backend_call(backend, train_and_evaluate, spec, config, out_dir=tmp_path)
    metrics = outcome.metrics
    assert metrics["test_accuracy"] > min_accuracy  # chance is 0.1
    assert metrics["n_train"] == limit and metrics["n_test"] == 2000
    assert len(metrics["history"]) == 1
    epoch = metrics["history"][0]
    assert epoch["val_accuracy"] is not None and epoch["seconds"] > 0
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert (tmp_path / metrics["model_file"]).is_file()


@pytest.mark.parametrize("backend", list(REGISTRY))
def test_metrics_record_spec_environment_and_history(backend: str, tmp_path: Path,
                                                     backend_call: Any) -> None:
    _require(backend)
    # TensorFlow fixes its thread pools once per process: use the count the other tests use
    config = TrainConfig(backend=backend, epochs=2, limit=512, limit_test=256, seed=3, threads=2)
    metrics = backend_call(backend, train_and_evaluate, "lenet5_bn_hidden", config,
                           out_dir=tmp_path).metrics
    assert metrics["schema_version"] == 1
    assert metrics["spec"]["name"] == "lenet5_bn_hidden" and len(metrics["spec"]["hash"]) == 16
    assert (metrics["backend"], metrics["device"], metrics["seed"]) == (backend, "cpu", 3)
    assert metrics["params"]["total"] == 546428
    assert (metrics["params"]["backend_trainable"], metrics["params"]["backend_non_trainable"]) \
        == (545976, 452)
    # this notebook trained without validation data: the history says so rather than inventing it
    assert [e["val_loss"] for e in metrics["history"]] == [None, None]
    epoch = metrics["history"][0]
    assert set(epoch) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                          "seconds", "machine_load", "window_seconds", "window_steps",
                          "window_first_call"}
    # the epoch's step windows: every step in one, their times within the epoch's
    assert sum(epoch["window_steps"]) == -(-metrics["n_train"] // metrics["batch_size"])
    assert 0 < sum(epoch["window_seconds"]) <= epoch["seconds"] * (1 + 1e-9)
    assert len(epoch["window_first_call"]) == len(epoch["window_steps"])
    env = metrics["environment"]
    assert env["machine"]["cpu"] and env["machine"]["logical_cores"]
    # TensorFlow's pools may have been fixed earlier in this process; what ran is recorded
    if backend == "torch":
        assert env["backend"]["intra_op_threads"] == 2
    assert "intra_op_threads" in env["backend"] and "inter_op_threads" in env["backend"]
    assert env["backend"]["compile_mode"]
    assert metrics["started_utc"].endswith("Z")
    assert metrics["timing"]["first_epoch_seconds"] == metrics["history"][0]["seconds"]
    # steady: the median of the epochs after the first, here the second alone
    assert metrics["timing"]["steady_epoch_seconds"] == metrics["history"][1]["seconds"]
    assert metrics["timing"]["definition"] == EPOCH_TIMING


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_test_metrics_are_those_of_a_fresh_pass_over_the_test_set(backend: str,
                                                                   tmp_path: Path) -> None:
    """Validating on the test set, the last epoch's validation pass gives the test metrics
    (no second pass): they must be what evaluating the trained weights gives."""
    _require(backend)
    from harness.spec import load_spec
    from harness.spec.initializers import load_weights

    config = TrainConfig(backend=backend, epochs=2, limit=512, limit_test=300, threads=2)
    metrics = train_and_evaluate("mlp2_bn", config, out_dir=tmp_path).metrics
    spec = load_spec("mlp2_bn")
    assert spec.train.validation == "test"
    last = metrics["history"][-1]
    assert (metrics["test_loss"], metrics["test_accuracy"]) == (last["val_loss"],
                                                                last["val_accuracy"])
    fresh = get_backend(backend, threads=2)
    model = fresh.build(spec)
    fresh.set_weights(model, load_weights(str(tmp_path / "final_weights.npz")))
    arrays = load_arrays(spec.input, limit=1, limit_test=300)
    evaluation = fresh.evaluate(model, fresh.to_native(arrays.x_test, arrays.y_test),
                                spec.train.batch_size)
    # Keras' test pass scores its predictions in float64, `evaluate` accumulates in float32
    eps = float(np.finfo(np.float32).eps)
    assert evaluation.accuracy == pytest.approx(metrics["test_accuracy"], rel=eps)
    # the same float32 maths; only a summation order could differ: n x float32 eps bounds it
    assert evaluation.loss == pytest.approx(metrics["test_loss"],
                                            rel=300 * float(np.finfo(np.float32).eps))
    confusion = np.asarray(metrics["confusion_matrix"])
    assert np.trace(confusion) / confusion.sum() == pytest.approx(evaluation.accuracy)
    # the recorded test-set probabilities (the export's native side) are the trained model's
    with np.load(tmp_path / metrics["test_outputs_file"]) as outputs:
        np.testing.assert_array_equal(outputs["labels"], arrays.y_test)
        np.testing.assert_array_equal(
            confusion_matrix(arrays.y_test, outputs["probabilities"].argmax(1)), confusion)
        np.testing.assert_allclose(outputs["probabilities"], fresh.predict(model, arrays.x_test),
                                   rtol=0, atol=1e-6)


def _epochs(*seconds: float) -> list[EpochRecord]:
    return [EpochRecord(i + 1, 1.0, 0.5, None, None, s) for i, s in enumerate(seconds)]


def test_steady_epoch_is_the_median_of_the_epochs_after_the_first() -> None:
    timing = epoch_timing(_epochs(9.0, 1.0, 4.0, 2.0), n_train=100)
    assert timing["first_epoch_seconds"] == 9.0
    assert timing["steady_epoch_seconds"] == 2.0  # median of 1, 4, 2; the first kept apart
    assert timing["steady_epochs"] == 3 and timing["samples_per_second"] == 50.0
    assert epoch_timing(_epochs(9.0, 3.0), n_train=30)["steady_epoch_seconds"] == 3.0


@pytest.mark.parametrize("seconds", [(), (9.0,)])
def test_fewer_than_two_epochs_have_no_steady_figure(seconds: tuple[float, ...]) -> None:
    timing = epoch_timing(_epochs(*seconds), n_train=100)
    assert timing["steady_epoch_seconds"] is None and timing["samples_per_second"] is None
    assert timing["steady_epochs"] == 0
    assert timing["first_epoch_seconds"] == (seconds[0] if seconds else None)


def _as_run_job(run_dir: Path, job: str, spec: str, backend: str, seed: int) -> Path:
    """job.json beside a training run's outputs, as `harness run` leaves a finished job."""
    folder = folders.job_dir(run_dir, job)
    write_json_atomic(folder / folders.JOB_FILE, {
        "schema_version": 1, "kind": "job", "job_id": job, "status": "ok", "error": None,
        "failed_step": None, "config": {"spec": spec, "backend": backend, "seed": seed}})
    return folder


def test_one_epoch_run_records_and_reports_no_steady_figure(tmp_path: Path) -> None:
    _require("torch")
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    from harness.report import write_report

    run = tmp_path / "run"
    job = "mlp2--torch--seed0"
    config = TrainConfig(backend="torch", epochs=1, limit=300, limit_test=100, threads=2)
    metrics = train_and_evaluate("mlp2", config, out_dir=folders.job_dir(run, job)).metrics
    timing = metrics["timing"]
    assert timing["first_epoch_seconds"] == metrics["history"][0]["seconds"] > 0
    assert timing["steady_epoch_seconds"] is None and timing["samples_per_second"] is None
    written = json.loads((folders.job_dir(run, job) / "metrics.json").read_text())
    assert written["timing"]["steady_epoch_seconds"] is None  # null, not the first epoch
    _as_run_job(run, job, "mlp2", "torch", 0)

    report = write_report(run, tmp_path / "report")
    import pandas as pd

    framework = pd.read_csv(report / "tables" / "framework.csv")
    assert framework["first_epoch_s_torch"].notna().all()
    assert framework["steady_epoch_s_torch"].isna().all()
    markdown = (report / "report.md").read_text()
    row = next(line for line in markdown.splitlines()
               if line.startswith("| mlp2") and "0." in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[-1] == "–"  # the steady column, last of the framework table
    assert "1 job(s) trained a single epoch: they have no steady epoch time (–)" in markdown
    assert "## Framework facts" in markdown and "unfused" in markdown


def test_framework_settings_reach_the_record_and_the_report(tmp_path: Path) -> None:
    """What a run asked for is recorded apart from what the framework reports it ran with."""
    _require("torch")
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    import torch

    from harness.report import write_report

    run = tmp_path / "run"
    job = "cnn2_k3_keras_example--torch--seed0"
    config = TrainConfig(backend="torch", epochs=1, limit=64, limit_test=64, threads=2,
                         batch_size=32, layout="nchw", tf32=True)
    try:
        metrics = train_and_evaluate("cnn2_k3_keras_example", config,
                                     out_dir=folders.job_dir(run, job)).metrics
    finally:  # process-wide switches: leave them as the default backend sets them
        get_backend("torch", threads=2)
    assert metrics["requested"] == {"threads": 2, "tf32": True, "layout": "nchw",
                                    "compile": "eager"}
    ran = metrics["environment"]["backend"]
    assert (ran["tf32"], ran["layout"], ran["compile_mode"]) == (True, "nchw", "eager")
    assert (ran["intra_op_threads"], ran["data_device"]) == (2, "cpu")
    assert not torch.backends.cuda.matmul.allow_tf32  # restored above
    _as_run_job(run, job, "cnn2_k3_keras_example", "torch", 0)
    report = write_report(run, tmp_path / "report")
    import pandas as pd

    settings = pd.read_csv(report / "tables" / "framework_settings.csv").iloc[0]
    assert (settings["backend"], settings["compile_mode"], settings["tf32"],
            settings["layout"]) == ("torch", "eager", "on", "nchw")
    assert settings["threads"].startswith("2 intra-op")


# No dropout; BN on a few dense features; average pools (see tests/backends/test_parity.py).
NO_DROPOUT_SPEC = """\
name: same_batches
input: {shape: [28, 28, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 4, padding: same, activation: tanh}
  - {type: avgpool2d, pool_size: 2}
  - {type: flatten}
  - {type: dense, units: 16, activation: tanh}
  - {type: batchnorm, momentum: 0.9, epsilon: 0.001}
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: sgd, learning_rate: 0.125, momentum: 0.5, nesterov: false}
  batch_size: 40
  epochs: 3
  seed: 5
  validation: none
"""


def test_timed_epochs_receive_the_same_batches_in_both_frameworks() -> None:
    """The harness's epoch loop (epoch_order -> train_epoch), 3 shuffled epochs with a partial
    last batch, in float64: both frameworks end with the same weights, so every timed epoch
    saw the same batches in the same order (a different order moves them far more)."""
    _require("torch")
    _require("keras")
    spec = parse_spec(NO_DROPOUT_SPEC)
    arrays = load_arrays(spec.input, limit=190, limit_test=10)
    final, losses = {}, {}
    for name in ("keras", "torch"):
        backend = get_backend(name, dtype="float64")
        model = backend.build(spec)
        backend.set_weights(model, initial_weights(spec))
        history, _ = _run_epochs(backend, model, spec, arrays, None, 3, spec.train.seed, 40,
                                 None)
        final[name], losses[name] = backend.get_weights(model), [e.train_loss for e in history]
    start = initial_weights(spec)
    assert not np.allclose(final["keras"]["3.kernel"], start["3.kernel"])
    for key in final["keras"]:
        np.testing.assert_allclose(final["torch"][key], final["keras"][key], rtol=1e-9,
                                   atol=1e-11, err_msg=key)
    np.testing.assert_allclose(losses["torch"], losses["keras"], rtol=1e-6)  # float32 metric
    # control: the same training over the orders of another seed ends elsewhere
    backend = get_backend("torch", dtype="float64")
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    _run_epochs(backend, model, spec, arrays, None, 3, spec.train.seed + 1, 40, None)
    moved = backend.get_weights(model)["3.kernel"] - final["keras"]["3.kernel"]
    assert np.abs(moved).max() > 1e4 * 1e-9 * np.abs(final["keras"]["3.kernel"]).max()
