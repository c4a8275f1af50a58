"""What a user reaches for first: `harness --version`, and the dataset each spec trains on in
`harness list` and `harness show`."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from harness.cli import main
from harness.spec import zoo_dir
from harness.spec.loader import MODELS_DIR_ENV


def test_version_prints_the_installed_package_version_and_exits_0(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"harness {importlib.metadata.version('harness')}\n"


@pytest.fixture()
def two_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A zoo of mlp2 on MNIST and the same model on Fashion-MNIST."""
    text = (zoo_dir() / "mlp2.yaml").read_text()
    assert "dataset: mnist" in text
    (tmp_path / "mlp2.yaml").write_text(text)
    (tmp_path / "mlp2_fashion.yaml").write_text(
        text.replace("name: mlp2", "name: mlp2_fashion").replace("dataset: mnist",
                                                                 "dataset: fashion-mnist"))
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    return tmp_path


def test_list_shows_each_specs_dataset(two_datasets: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    rows = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()
            if line.split() and line.split()[0].startswith(("spec", "mlp2"))}
    assert rows == {"spec": ["dataset", "input"], "mlp2": ["mnist", "784"],
                    "mlp2_fashion": ["fashion-mnist", "784"]}


@pytest.mark.parametrize(("spec", "dataset"), [("mlp2", "mnist"),
                                               ("mlp2_fashion", "fashion-mnist")])
def test_show_names_the_specs_dataset(spec: str, dataset: str, two_datasets: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", spec]) == 0
    assert f" Dataset: {dataset}\n" in capsys.readouterr().out
