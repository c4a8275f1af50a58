"""A spec's `initial_weights` file: optional (every spec without it dumps and hashes as
before), resolved beside the spec, its arrays checked against the spec's layers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import UsageError
from harness.spec import load_spec
from harness.spec.initializers import initial_weights
from harness.spec.loader import dump_spec, list_specs, parse_spec, spec_hash


def test_a_spec_without_it_dumps_without_it() -> None:
    for name in list_specs("all"):
        spec = load_spec(name)
        assert spec.initial_weights is None
        assert "initial_weights" not in spec.model_dump(mode="json")
        assert "initial_weights" not in dump_spec(spec)


def _spec_with_file(folder: Path, weights: dict[str, np.ndarray], name: str = "w.npz") -> str:
    np.savez(folder / name, **weights)
    text = dump_spec(load_spec("mlp2"))
    return text + f"initial_weights:\n  path: {name}\n"


def test_the_file_is_what_training_starts_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    drawn = initial_weights(load_spec("mlp2"))
    mine = {key: value + 1.0 for key, value in drawn.items()}
    text = _spec_with_file(tmp_path, mine)
    monkeypatch.chdir("/")  # the path is read from the spec's folder, not the current one
    spec = parse_spec(text, source=tmp_path / "mine.yaml")
    got = initial_weights(spec)
    assert got.keys() == drawn.keys()
    for key in drawn:
        np.testing.assert_array_equal(got[key], mine[key])
    assert spec_hash(spec) != spec_hash(load_spec("mlp2"))  # the file's content is hashed
    again = parse_spec(dump_spec(spec), source=Path("/elsewhere/x.yaml"))  # absolute path
    assert spec_hash(again) == spec_hash(spec)


def test_a_file_whose_arrays_do_not_fit_is_one_line(tmp_path: Path) -> None:
    drawn = initial_weights(load_spec("mlp2"))
    first = next(iter(drawn))
    cases = {
        "missing": ({k: v for k, v in drawn.items() if k != first}, f"no array '{first}'"),
        "shape": ({**drawn, first: drawn[first].T},
                  f"array '{first}' has shape {drawn[first].T.shape}, the spec's layer needs "
                  f"{drawn[first].shape}"),
        "extra": ({**drawn, "9.kernel": drawn[first]}, "arrays ['9.kernel'] belong to no layer"),
    }
    for case, (weights, message) in cases.items():
        spec = parse_spec(_spec_with_file(tmp_path, weights, f"{case}.npz"),
                          source=tmp_path / "x.yaml")
        with pytest.raises(UsageError) as caught:
            initial_weights(spec)
        line = str(caught.value)
        assert "\n" not in line and f"{case}.npz" in line and message in line, line


def test_hashes_of_the_zoo_specs_are_unchanged() -> None:
    """The zoo specs' hashes as recorded before the field existed (commit 080b6fa,
    tests/spec/zoo_hashes.json; a spec added since is not in it)."""
    recorded = json.loads((Path(__file__).parent / "zoo_hashes.json").read_text())
    assert {name: spec_hash(load_spec(name)) for name in recorded} == recorded
