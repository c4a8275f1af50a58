"""A short training run learns well above chance in both backends and records what it did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.backends import REGISTRY
from harness.training import TrainConfig, train_and_evaluate


def _require(backend: str) -> None:
    pytest.importorskip({"torch": "torch", "keras": "tensorflow"}[backend])


@pytest.mark.parametrize("backend", list(REGISTRY))
@pytest.mark.parametrize(("spec", "limit", "min_accuracy"),
                         [("mlp2", 3000, 0.5), ("cnn2_k3_keras_example", 3000, 0.6)])
def test_one_epoch_learns_well_above_chance(backend: str, spec: str, limit: int,
                                            min_accuracy: float, tmp_path: Path) -> None:
    _require(backend)
    config = TrainConfig(backend=backend, epochs=1, limit=limit, limit_test=2000, threads=2)
    outcome = train_and_evaluate(spec, config, out_dir=tmp_path)
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
def test_metrics_record_spec_environment_and_history(backend: str, tmp_path: Path) -> None:
    _require(backend)
    # TensorFlow fixes its thread pools once per process: use the count the other tests use
    config = TrainConfig(backend=backend, epochs=2, limit=512, limit_test=256, seed=3, threads=2)
    metrics = train_and_evaluate("lenet5_bn_hidden", config, out_dir=tmp_path).metrics
    assert metrics["schema_version"] == 1
    assert metrics["spec"]["name"] == "lenet5_bn_hidden" and len(metrics["spec"]["hash"]) == 16
    assert (metrics["backend"], metrics["device"], metrics["seed"]) == (backend, "cpu", 3)
    assert metrics["params"]["total"] == 546428
    assert (metrics["params"]["backend_trainable"], metrics["params"]["backend_non_trainable"]) \
        == (545976, 452)
    # this notebook trained without validation data: the history says so rather than inventing it
    assert [e["val_loss"] for e in metrics["history"]] == [None, None]
    assert set(metrics["history"][0]) == {"epoch", "train_loss", "train_accuracy", "val_loss",
                                          "val_accuracy", "seconds", "machine_load"}
    env = metrics["environment"]
    assert env["machine"]["cpu"] and env["machine"]["logical_cores"]
    # TensorFlow's pools may have been fixed earlier in this process; what ran is recorded
    if backend == "torch":
        assert env["backend"]["intra_op_threads"] == 2
    assert "intra_op_threads" in env["backend"] and "inter_op_threads" in env["backend"]
    assert env["backend"]["compile_mode"]
    assert metrics["started_utc"].endswith("Z")
    assert metrics["timing"]["first_epoch_seconds"] == metrics["history"][0]["seconds"]
