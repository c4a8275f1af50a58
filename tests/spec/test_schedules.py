"""`train.schedule` and the `adamw` optimizer in a spec: validated at load with one line per
problem naming the field; a spec without a schedule dumps and hashes as before schedules
existed; the formula the backends follow (their agreement:
tests/backends/test_schedule_parity.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from harness.spec import SpecError, list_specs, load_spec, parse_spec, spec_hash
from harness.spec.loader import dump_spec, training_hash

VALID = """\
name: scheduled
input: {shape: [784]}
layers:
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: adamw, learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1.0e-7,
              weight_decay: 0.004}
  schedule: {name: step, step_size: 2, gamma: 0.7, unit: epoch}
  batch_size: 32
  epochs: 3
"""
# mlp2's hashes before schedules existed
MLP2_HASH, MLP2_TRAINING_HASH = "d511d8f7b0ff24c1", "bc31d83ee7ea71b7"
STEP = "{name: step, step_size: 2, gamma: 0.7, unit: epoch}"


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: ")
    return lines[0]


def test_a_schedule_and_adamw_load() -> None:
    spec = parse_spec(VALID)
    assert spec.train.optimizer.name == "adamw"
    assert spec.train.optimizer.weight_decay == 0.004
    assert spec.train.schedule.name == "step" and spec.train.schedule.unit == "epoch"
    again = parse_spec(dump_spec(spec))
    assert again == spec and spec_hash(again) == spec_hash(spec)


@pytest.mark.parametrize(("schedule", "expected"), [
    ("{name: step, step_size: 0, gamma: 0.7, unit: epoch}",
     "train.schedule.step_size: input should be greater than 0, got 0"),
    ("{name: step, step_size: 1.5, gamma: 0.7, unit: epoch}",
     "train.schedule.step_size: input should be a valid integer"),
    ("{name: step, step_size: 2, gamma: 0, unit: epoch}",
     "train.schedule.gamma: input should be greater than 0, got 0"),
    ("{name: step, step_size: 2, gamma: 0.7}", "train.schedule.unit: required field is missing"),
    ("{name: step, step_size: 2, gamma: 0.7, unit: batch}",
     "train.schedule.unit: expected one of ['epoch', 'step'], got 'batch'"),
    ("{name: step, step_size: 2, gamma: 0.7, unit: epoch, decay_steps: 3}",
     "train.schedule: unknown field 'decay_steps'"),
    ("{name: exponential, decay_steps: -3, decay_rate: 0.9, staircase: false, unit: step}",
     "train.schedule.decay_steps: input should be greater than 0, got -3"),
    ("{name: exponential, decay_steps: 3, decay_rate: 0, staircase: false, unit: step}",
     "train.schedule.decay_rate: input should be greater than 0, got 0"),
    ("{name: exponential, decay_steps: 3, decay_rate: 0.9, staircase: 1, unit: step}",
     "train.schedule.staircase: input should be a valid boolean"),
    ("{name: cosine, decay_steps: 3, alpha: 1.5, unit: step}",
     "train.schedule.alpha: input should be less than or equal to 1, got 1.5"),
    ("{name: cosine, decay_steps: 3, alpha: -0.1, unit: step}",
     "train.schedule.alpha: input should be greater than or equal to 0, got -0.1"),
    ("{name: linear, unit: step}",
     "train.schedule.name: expected one of ['cosine', 'exponential', 'step'], got 'linear'"),
    ("{step_size: 2, gamma: 0.7, unit: epoch}",
     "train.schedule.name: required field is missing"),
])
def test_a_bad_schedule_is_one_line_naming_the_field(tmp_path: Path, schedule: str,
                                                     expected: str) -> None:
    assert expected in _error(tmp_path, VALID.replace(STEP, schedule))


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("weight_decay: 0.004", "weight_decay: -0.004",
     "train.optimizer.weight_decay: input should be greater than or equal to 0"),
    (",\n              weight_decay: 0.004", "",
     "train.optimizer.weight_decay: required field is missing"),
])
def test_adamw_hyperparameters(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in _error(tmp_path, VALID.replace(old, new))


def test_without_a_schedule_dumps_and_hashes_are_unchanged() -> None:
    """No `schedule` key in the dump, YAML or hash input of any zoo spec without one; hashes
    pinned from before schedules existed (every zoo spec's was compared so when they were
    added)."""
    for name in list_specs("all"):
        spec = load_spec(name)
        if spec.train.schedule is not None:  # the examples zoo's pytorch/examples specs
            continue
        assert "schedule" not in spec.model_dump()["train"], name
        assert "schedule" not in yaml.safe_load(dump_spec(spec))["train"], name
    assert spec_hash(load_spec("cnn3_k3")) == "3dbad6f1b3253884"
    assert spec_hash(load_spec("mlp2")) == MLP2_HASH
    assert training_hash(load_spec("mlp2")) == MLP2_TRAINING_HASH


def test_a_schedule_is_part_of_the_hash() -> None:
    spec = parse_spec(VALID)
    other = parse_spec(VALID.replace("gamma: 0.7", "gamma: 0.5"))
    data = yaml.safe_load(dump_spec(spec))
    del data["train"]["schedule"]
    constant = parse_spec(yaml.safe_dump(data))
    assert len({spec_hash(spec), spec_hash(other), spec_hash(constant)}) == 3
    assert len({training_hash(spec), training_hash(other), training_hash(constant)}) == 3


@pytest.mark.parametrize(("schedule", "steps", "expected"), [
    ("{name: step, step_size: 2, gamma: 0.5, unit: step}", [0, 1, 2, 3, 4], [1, 1, .5, .5, .25]),
    # 3 steps an epoch: t = 0, 0, 0, 1, 1, 1, 2
    ("{name: step, step_size: 1, gamma: 0.5, unit: epoch}", [0, 2, 3, 5, 6], [1, 1, .5, .5, .25]),
    ("{name: exponential, decay_steps: 2, decay_rate: 0.25, staircase: false, unit: step}",
     [0, 1, 2, 3], [1, .5, .25, .125]),
    ("{name: exponential, decay_steps: 2, decay_rate: 0.25, staircase: true, unit: step}",
     [0, 1, 2, 3], [1, 1, .25, .25]),
    ("{name: cosine, decay_steps: 2, alpha: 0.5, unit: step}", [0, 1, 2, 9],
     [1, .75, .5, .5]),
    ("{name: cosine, decay_steps: 2, alpha: 0.0, unit: epoch}", [0, 3, 5, 6, 30],
     [1, .5, .5, 0, 0]),
])
def test_the_formula(schedule: str, steps: list[int], expected: list[float]) -> None:
    spec = parse_spec(VALID.replace(STEP, schedule))
    got = [spec.train.schedule.learning_rate(2.0, s, 3) / 2.0 for s in steps]
    assert got == pytest.approx(expected, abs=1e-15)


def test_a_schedule_in_epochs_needs_the_epoch_length() -> None:
    schedule = parse_spec(VALID).train.schedule
    with pytest.raises(ValueError, match="steps_per_epoch"):
        schedule.learning_rate(1.0, 5, None)
    assert math.isclose(schedule.learning_rate(1.0, 5, 1), 0.7 ** 2)
