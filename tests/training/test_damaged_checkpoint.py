"""A damaged training checkpoint never fails its job: it is discarded with a line saying so,
and the training starts over, ending where one that never stopped does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.training import train_and_evaluate
from harness.training.checkpoint import PROGRESS_FILE

from .test_checkpoint import (
    SPEC,
    _assert_same_training,
    _config,
    _stop_after,
    _Stopped,
    _summary,
    straight,
)


def _cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _a_list(path: Path) -> None:
    path.write_text("[]")


# backend, damage, the file it is done to (None: the state file) and the error it gives
CASES: list[tuple[str, Callable[[Path], None], str | None, str]] = [
    ("keras", _cut_short, None, "BadZipFile"),
    ("torch", _garbage, None, "UnpicklingError"),
    ("torch", _a_list, PROGRESS_FILE, "AttributeError"),
]


@pytest.mark.parametrize(("backend", "damage", "damaged_file", "error"), CASES,
                         ids=["keras state cut short", "torch state garbage",
                              "progress.json a list"])
def test_a_damaged_checkpoint_is_discarded_and_the_training_starts_over(
        backend: str, damage: Callable[[Path], None], damaged_file: str | None, error: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tensorflow" if backend == "keras" else "torch")
    reference = straight(backend, str(tmp_path))
    checkpoint = tmp_path / "checkpoint"
    with pytest.raises(_Stopped):
        train_and_evaluate(SPEC, _config(backend), out_dir=tmp_path / "a",
                           checkpoint_dir=checkpoint, on_epoch=_stop_after(2))
    path = checkpoint / damaged_file if damaged_file else next(checkpoint.glob("state-*.bin"))
    damage(path)
    capsys.readouterr()
    trained: list[int] = []
    out = tmp_path / "b"
    outcome = train_and_evaluate(SPEC, _config(backend), out_dir=out, checkpoint_dir=checkpoint,
                                 on_epoch=lambda record, _: trained.append(record.epoch))
    assert trained == [1, 2, 3]
    assert (f"checkpoint checkpoint/{path.name} not used, training from the first epoch: "
            f"damaged ({error}: ") in capsys.readouterr().err
    assert outcome.metrics["checkpoint"]["resumes"] == []
    _assert_same_training(_summary(out, outcome.metrics), reference)
    assert not checkpoint.exists()
