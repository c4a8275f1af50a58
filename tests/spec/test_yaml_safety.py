"""Hostile or careless YAML and grids: a key given twice, aliases nested into a "billion laughs",
and `--set` grids of millions of points are each one line and exit 2, found before anything
is expanded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UsageError
from harness.run import matrix
from harness.run import plan as plan_module
from harness.run.sweeps import MAX_JOBS, parse_set
from harness.spec import SpecError, load_spec, zoo_dir

# A plan of some 500 bytes whose aliases expand to 10^9 items (PyYAML builds them as shared
# lists; the first repr of them, in an error message, ran out of memory after 38 s).
LAUGHS = "options:\n  threads:\n    - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" \
    + "".join(f"    - &{name} [{', '.join(f'*{before}' for _ in range(10))}]\n"
              for before, name in zip("abcdefgh", "bcdefghi", strict=True)) \
    + "groups: [{specs: mlp2}]\n"
# Aliases of a list a hundred items wide: the message that showed them was 44 kB long.
WIDE = "options:\n  threads: [&a [" + ", ".join(["x" * 40] * 100) + "]" + ", *a" * 9 + "]\n" \
    "groups: [{specs: mlp2}]\n"


def _run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err[:2000]
    return err


def test_a_key_given_twice_in_a_spec_is_refused_naming_file_line_and_key(
        tmp_path: Path) -> None:
    text = (zoo_dir() / "mlp2.yaml").read_text(encoding="utf-8")
    assert "\ntrain:\n" in text
    spec = tmp_path / "twice.yaml"
    spec.write_text(text.replace("\ntrain:\n", "\ntrain:\n  batch_size: 128\n  batch_size: 7\n"))
    line = spec.read_text().splitlines().index("  batch_size: 7") + 1
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert str(info.value) == (
        f"{spec}: line {line}, column 3: key 'batch_size' given twice in one mapping (first "
        f"on line {line - 1}); give each key once")


@pytest.fixture
def not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan read without complaint goes no further than run_matrix, which fails the test."""
    def run_matrix(*args: object, **kwargs: object) -> None:
        raise AssertionError("the plan was accepted")

    monkeypatch.setattr(matrix, "run_matrix", run_matrix)


@pytest.mark.usefixtures("not_run")
def test_a_key_given_twice_in_a_plan_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("options: {threads: 1}\ngroups: [{specs: mlp2}]\noptions: {threads: 2}\n")
    err = _run_error(["run", "--plan", str(plan), "--out", str(tmp_path / "run")], capsys)
    assert f"--plan {plan}: line 3, column 1: key 'options' given twice" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("not_run")
@pytest.mark.parametrize("text", [LAUGHS, WIDE], ids=["billion-laughs", "wide"])
def test_aliases_in_a_plan_are_refused_at_once(tmp_path: Path, text: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    started = time.monotonic()
    err = _run_error(["run", "--plan", str(plan), "--out", str(tmp_path / "run")], capsys)
    assert time.monotonic() - started < 10
    assert "YAML aliases (*name) are not allowed" in err and len(err) < 300
    assert not (tmp_path / "run").exists()


def _never_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    def expand(*args: object) -> None:
        raise AssertionError("the grid was expanded before its size was checked")

    monkeypatch.setattr(plan_module, "grid", expand)
    monkeypatch.setattr(plan_module, "apply_point", expand)


def test_a_grid_past_the_job_limit_is_refused_before_it_is_expanded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _never_expanded(monkeypatch)
    values = ",".join(str(value) for value in range(1, 41))
    argv = ["run", "--specs", "mlp2", "--backends", "torch", "--out", str(tmp_path / "run"),
            "--set", f"train.batch_size={values}", "--set", f"train.epochs={values}",
            "--set", f"layers[0].units={values}"]
    err = _run_error(argv, capsys)
    assert f"--set x --backends x --compile: 64,000 jobs, more than the {MAX_JOBS:,} " in err
    assert not (tmp_path / "run").exists()


def test_seeds_and_backends_count_toward_the_job_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _never_expanded(monkeypatch)
    seeds = ",".join(str(seed) for seed in range(MAX_JOBS // 2 + 1))
    argv = ["run", "--specs", "mlp2", "--backends", "keras,torch", "--seeds", seeds,
            "--out", str(tmp_path / "run")]
    assert f"{MAX_JOBS + 2:,} jobs" in _run_error(argv, capsys)


def test_one_set_of_more_values_than_the_job_limit_is_refused() -> None:
    values = ",".join(str(value) for value in range(MAX_JOBS + 1))
    with pytest.raises(UsageError, match=rf"^--set train.epochs: {MAX_JOBS + 1:,} values, "):
        parse_set(f"train.epochs={values}")
