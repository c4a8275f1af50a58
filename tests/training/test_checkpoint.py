"""A training cut short resumes from its checkpoint and ends exactly where an uninterrupted
one does; a checkpoint that is another training's, or damaged, is never resumed from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.backends import REGISTRY
from harness.spec import ModelSpec, load_spec
from harness.spec.initializers import load_weights
from harness.training import FINAL_WEIGHTS_FILE, EpochRecord, TrainConfig, train_and_evaluate
from harness.training.checkpoint import PROGRESS_FILE

# BatchNorm statistics, dropout masks and Adam's moments and step count: all must come back
SPEC = "mlp512_128_sigmoid_bn_dropout_adam"
EPOCHS = 3


class _Stopped(Exception):
    """Stands for the process being killed after an epoch."""


def _config(backend: str, seed: int = 0) -> TrainConfig:
    return TrainConfig(backend=backend, epochs=EPOCHS, seed=seed, limit=600, limit_test=200,
                       threads=1)


def _stop_after(epoch: int) -> Any:
    def on_epoch(record: EpochRecord, _epochs: int) -> None:
        if record.epoch == epoch:
            raise _Stopped
    return on_epoch


def _summary(out_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """What the comparison needs, picklable from a backend's worker process."""
    return {"history": [{k: e[k] for k in ("train_loss", "train_accuracy", "val_loss",
                                            "val_accuracy")} for e in metrics["history"]],
            "test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"],
            "checkpoint": metrics["checkpoint"], "schedule": metrics["schedule"],
            "weights": load_weights(str(out_dir / FINAL_WEIGHTS_FILE))}


def straight(backend: str, root: str, spec: str | ModelSpec = SPEC) -> dict[str, Any]:
    out = Path(root) / "straight"
    outcome = train_and_evaluate(spec, _config(backend), out_dir=out)
    return _summary(out, outcome.metrics)


def stopped_then_resumed(backend: str, root: str, stop_at: int,
                         spec: str | ModelSpec = SPEC) -> dict[str, Any]:
    """Stopped after epoch `stop_at`, then run again (a new backend, model and RNG seeding,
    as a new process does); which epochs the second run trained itself."""
    out, checkpoint = Path(root) / "resumed", Path(root) / "checkpoint"
    with pytest.raises(_Stopped):
        train_and_evaluate(spec, _config(backend), out_dir=out, checkpoint_dir=checkpoint,
                           on_epoch=_stop_after(stop_at))
    saved = (checkpoint / PROGRESS_FILE).is_file()
    trained: list[int] = []
    outcome = train_and_evaluate(spec, _config(backend), out_dir=out, checkpoint_dir=checkpoint,
                                 on_epoch=lambda record, _: trained.append(record.epoch))
    return {**_summary(out, outcome.metrics), "saved": saved, "trained": trained,
            "checkpoint_left": checkpoint.exists()}


def _assert_same_training(resumed: dict[str, Any], reference: dict[str, Any]) -> None:
    # the same operations on the same data and state, one thread: the same bits
    assert resumed["history"] == reference["history"]
    assert resumed["test_accuracy"] == reference["test_accuracy"]
    assert resumed["test_loss"] == reference["test_loss"]
    for key, value in reference["weights"].items():
        np.testing.assert_array_equal(resumed["weights"][key], value, err_msg=key)


@pytest.mark.parametrize("backend", list(REGISTRY))
def test_a_stopped_training_resumes_and_ends_where_an_uninterrupted_one_does(
        backend: str, tmp_path: Path, backend_call: Any) -> None:
    reference = backend_call(backend, straight, backend, str(tmp_path))
    resumed = backend_call(backend, stopped_then_resumed, backend, str(tmp_path), 2)
    assert resumed["saved"]
    assert resumed["trained"] == [3]  # epochs 1 and 2 came from the checkpoint
    _assert_same_training(resumed, reference)
    assert [r["after_epoch"] for r in resumed["checkpoint"]["resumes"]] == [2]
    assert not resumed["checkpoint_left"]  # removed once the training finished
    assert reference["checkpoint"] is None


# SPEC trained with AdamW under a schedule: 600 images in batches of 128 (the spec's), 5 steps
# an epoch, the last of 88; the rate halves every epoch, or changes every step
SCHEDULES = {
    "epoch": {"name": "step", "step_size": 1, "gamma": 0.5, "unit": "epoch"},
    "step": {"name": "cosine", "decay_steps": 12, "alpha": 0.125, "unit": "step"},
}


def scheduled_spec(unit: str) -> ModelSpec:
    data = load_spec(SPEC).model_dump(mode="json")
    data["train"]["optimizer"] = {"name": "adamw", "learning_rate": 0.01, "beta_1": 0.9,
                                  "beta_2": 0.999, "epsilon": 1e-7, "weight_decay": 0.05}
    data["train"]["schedule"] = SCHEDULES[unit]
    return ModelSpec.model_validate(data)


@pytest.mark.parametrize(("backend", "unit"), [
    *((name, "epoch") for name in REGISTRY), ("keras", "step"), ("torch", "step")])
def test_a_scheduled_training_resumes_where_an_uninterrupted_one_is(
        backend: str, unit: str, tmp_path: Path, backend_call: Any) -> None:
    """Stopped after epoch 1 of 3 and resumed: the rate goes on from the steps taken (Keras'
    `iterations`, torch's step count, both in the checkpoint) and the epoch length the resumed
    run computes again from its data, to the same bits as an uninterrupted training."""
    spec = scheduled_spec(unit)
    reference = backend_call(backend, straight, backend, str(tmp_path), spec)
    resumed = backend_call(backend, stopped_then_resumed, backend, str(tmp_path), 1, spec)
    assert resumed["saved"] and resumed["trained"] == [2, 3]
    _assert_same_training(resumed, reference)
    assert reference["schedule"] == resumed["schedule"] == SCHEDULES[unit]


def test_resuming_differs_from_restarting_the_rng(tmp_path: Path) -> None:
    """Control: epoch 3 trained from epoch 2's weights with freshly seeded dropout masks ends
    elsewhere, so the equality above does rest on the restored RNG and optimizer state."""
    torch = pytest.importorskip("torch")
    reference = straight("torch", str(tmp_path))
    checkpoint = tmp_path / "checkpoint"
    with pytest.raises(_Stopped):
        train_and_evaluate(SPEC, _config("torch"), out_dir=tmp_path / "a",
                           checkpoint_dir=checkpoint, on_epoch=_stop_after(2))
    state = next(checkpoint.glob("state-epoch*.bin"))
    saved = torch.load(state, weights_only=True)
    saved["cpu_rng"] = torch.manual_seed(123).get_state()
    torch.save(saved, state)
    out = tmp_path / "b"
    outcome = train_and_evaluate(SPEC, _config("torch"), out_dir=out, checkpoint_dir=checkpoint)
    assert _summary(out, outcome.metrics)["history"][:2] == reference["history"][:2]
    assert _summary(out, outcome.metrics)["history"][2] != reference["history"][2]


@pytest.mark.parametrize("damage", ["another seed", "truncated state", "garbled progress"])
def test_a_checkpoint_that_does_not_fit_is_not_resumed_from(
        damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    reference = straight("torch", str(tmp_path))
    checkpoint = tmp_path / "checkpoint"
    first = _config("torch", seed=1) if damage == "another seed" else _config("torch")
    with pytest.raises(_Stopped):
        train_and_evaluate(SPEC, first, out_dir=tmp_path / "a", checkpoint_dir=checkpoint,
                           on_epoch=_stop_after(2))
    if damage == "truncated state":
        state = next(checkpoint.glob("state-epoch*.bin"))
        state.write_bytes(state.read_bytes()[:100])
    elif damage == "garbled progress":
        (checkpoint / PROGRESS_FILE).write_text('{"training": ')
    capsys.readouterr()
    trained: list[int] = []
    out = tmp_path / "b"
    outcome = train_and_evaluate(SPEC, _config("torch"), out_dir=out, checkpoint_dir=checkpoint,
                                 on_epoch=lambda record, _: trained.append(record.epoch))
    assert trained == [1, 2, 3]
    assert "not used, training from the first epoch" in capsys.readouterr().err
    _assert_same_training(_summary(out, outcome.metrics), reference)
    assert outcome.metrics["checkpoint"]["resumes"] == []


def test_harness_train_continues_from_its_checkpoint_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    pytest.importorskip("torch")
    checkpoint = tmp_path / "checkpoint"
    argv = ["train", "--spec", SPEC, "--backend", "torch", "--epochs", str(EPOCHS), "--limit",
            "600", "--limit-test", "200", "--threads", "1", "--out", str(tmp_path / "out"),
            "--checkpoint", str(checkpoint)]
    with pytest.raises(_Stopped):  # the same training as the command's, stopped after epoch 2
        train_and_evaluate(SPEC, _config("torch"), out_dir=tmp_path / "out",
                           checkpoint_dir=checkpoint, on_epoch=_stop_after(2))
    capsys.readouterr()
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "2 epoch(s) done" in err
    assert "epoch   3/3" in out and "epoch   2/3" not in out
    assert not checkpoint.exists()
    reference = straight("torch", str(tmp_path))
    assert _summary(tmp_path / "out", json.loads((tmp_path / "out" / "metrics.json")
                                                 .read_text()))["history"] == reference["history"]
