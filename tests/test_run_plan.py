"""`harness run --plan FILE` and `--specs study:NAME`: groups of specs with their own seeds,
options checked like the command line's, and the command line overriding the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UsageError
from harness.run import matrix
from harness.run.plan import RunConfig, SpecGroup, plan_jobs, resolve_specs
from harness.spec import list_specs, load_spec


def _study(name: str) -> list[str]:
    return [spec for spec in list_specs()
            if (load_spec(spec).reference and load_spec(spec).reference.study) == name]


def test_a_study_selects_its_zoo_specs() -> None:
    depth = _study("mlp_depth_bn_dropout")
    assert len(depth) == 6
    assert resolve_specs(["study:mlp_depth_bn_dropout"]) == depth
    with pytest.raises(UsageError, match=r"study:nope: no such study; expected one of \["):
        resolve_specs(["study:nope"])


def test_groups_give_each_spec_its_own_seeds() -> None:
    config = RunConfig(specs=[], backends=["torch"], groups=[
        SpecGroup(["mlp2", "mlp3"], [0, 1, 2]), SpecGroup(["mlp5"], None),
        SpecGroup(["mlp2"], [3])])  # a spec in two groups runs with both groups' seeds
    ids = [job.job_id for job in plan_jobs(config).jobs]
    assert ids == [f"mlp2--torch--seed{s}" for s in (0, 1, 2, 3)] + \
        [f"mlp3--torch--seed{s}" for s in (0, 1, 2)] + \
        [f"mlp5--torch--seed{load_spec('mlp5').train.seed}"]


PLAN = """\
options:
  backends: [torch]
  threads: 1
  batch_sizes: [1, 32]
  strict_providers: true
  set: ["train.epochs=1"]
groups:
  - {specs: "study:mlp_depth_bn_dropout", seeds: [0, 1]}
  - {specs: "mlp512_128_relu_sgd"}
"""


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[RunConfig, Path]]:
    """run_matrix records what it was asked to run instead of running it."""
    calls: list[tuple[RunConfig, Path]] = []

    def fake_run(config: RunConfig, out: Path, **options: object) -> dict:
        calls.append((config, out))
        return {"ok": 0, "jobs": 0, "failed": [], "unavailable": []}

    monkeypatch.setattr(matrix, "run_matrix", fake_run)
    return calls


def test_a_plan_is_parsed_like_the_command_line_and_overridden_by_it(
        tmp_path: Path, captured: list[tuple[RunConfig, Path]]) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    assert main(["run", "--plan", str(plan), "--out", str(tmp_path / "a")]) == 0
    assert main(["run", "--plan", str(plan), "--out", str(tmp_path / "b"), "--threads", "2"]) == 0
    (first, out), (second, _) = captured
    assert out == tmp_path / "a"
    assert first.groups == [SpecGroup(["study:mlp_depth_bn_dropout"], [0, 1]),
                            SpecGroup(["mlp512_128_relu_sgd"], None)]
    assert (first.backends, first.threads, first.batch_sizes) == (["torch"], 1, [1, 32])
    assert first.strict_providers and first.sets == ["train.epochs=1"]
    assert second.threads == 2 and second.batch_sizes == [1, 32]  # the command line wins
    assert len(plan_jobs(first).jobs) == 6 * 2 + 1


@pytest.mark.parametrize(("text", "message"), [
    ("groups: []", "groups: expected a non-empty list"),
    ("options: {threads: 1}", "groups: expected a non-empty list"),
    ("groups: [{specs: mlp2, seed: 1}]", "groups[0]: expected a mapping with `specs`"),
    ("groups: [{specs: mlp2}]\noptions: {out: x}", "options.out: not a plan option"),
    ("groups: [{specs: mlp2}]\noptions: {threads: {a: 1}}", "options.threads: {'a': 1}"),
    ("groups: [{specs: mlp2}]\noptions: {strict_providers: 1}", "expected true or false"),
    ("groups: [{specs: mlp2}\n", "invalid YAML"),
    ("- 1", "expected a mapping with `groups`"),
])
def test_a_bad_plan_is_one_line_and_exit_2(tmp_path: Path, text: str, message: str,
                                           capsys: pytest.CaptureFixture[str],
                                           captured: list) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    assert main(["run", "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(plan) in err and "Traceback" not in err
    assert not captured


def test_a_bad_value_in_a_plan_names_the_plan_and_the_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], captured: list) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("options: {threads: 0}\ngroups: [{specs: mlp2, seeds: [0]}]")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--plan", str(plan)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--plan {plan}" in err and "--threads: 0" in err and not captured


def test_plan_and_specs_are_exclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      captured: list) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("groups: [{specs: mlp2}]")
    assert main(["run", "--plan", str(plan), "--specs", "mlp3"]) == 2
    assert main(["run"]) == 2
    assert "give --specs or --plan" in capsys.readouterr().err and not captured
