"""The modern zoo (harness/zoo/modern/): residual, depthwise, attention and recurrent models.
Every spec loads, states its parameter counts (checked against Keras' and PyTorch's own counts
in tests/backends/test_parity.py), belongs to the `modern` study, and its name is unique across
the zoos, so `harness train --spec NAME` finds it."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.run.plan import resolve_specs
from harness.spec import infer, list_specs, load_spec, zoo_dir
from harness.spec.loader import ALL_ZOOS, ZOOS

MODERN = list_specs("modern")


def test_the_zoos_are_apart_and_names_unique() -> None:
    assert MODERN and "resnet20" in MODERN
    assert not set(MODERN) & set(list_specs())
    every_zoo = [name for zoo in ZOOS for name in list_specs(zoo)]
    assert len(set(every_zoo)) == len(every_zoo)
    assert list_specs(ALL_ZOOS) == sorted(every_zoo)
    assert zoo_dir("modern") == zoo_dir() / "modern"
    assert set(ZOOS) == {"mnist", "modern", "examples"}


@pytest.mark.parametrize("name", MODERN)
def test_a_modern_spec_states_its_counts_and_study(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name
    assert spec.reference is not None and spec.reference.study == "modern"
    summary = infer(spec)
    params = spec.reference.params
    assert params is not None
    assert (params.total, params.trainable, params.non_trainable) == (
        summary.total_params, summary.trainable_params, summary.non_trainable_params)


def test_run_selects_a_zoo_and_its_study() -> None:
    assert resolve_specs(["zoo:modern"]) == MODERN
    assert resolve_specs(["study:modern"]) == MODERN
    assert "resnet20" not in resolve_specs(["all"])


def test_list_shows_a_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--zoo", "modern"]) == 0
    out = capsys.readouterr().out
    assert "resnet20" in out and "mlp5_bn" not in out


def test_an_unknown_zoo_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["list", "--zoo", "vision"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and "--zoo: invalid choice: 'vision'" in err[-1]
