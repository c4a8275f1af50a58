"""Where the datasets come from: a --data-dir that does not exist is a typo said at once (exit
2, nothing made), and files are downloaded unasked only into the default cache folder; into any
other folder only with --download.

The network is never touched: harness.data.datasets._fetch is replaced by a recorder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.data import DATASETS, DataError
from harness.data import datasets as data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(),
                                  reason=f"the downloads are served from {SHARED}")
TRAIN = ["train", "--spec", "mlp2", "--backend", "torch", "--limit", "100", "--limit-test",
         "100", "--epochs", "1"]
COMMANDS = [TRAIN, ["export", "--backend", "torch", "--spec", "mlp2", "--out", "x.onnx"],
            ["bench", "--spec", "mlp2"], ["parity", "--spec", "mlp2"],
            ["run", "--specs", "mlp2"]]


@pytest.fixture()
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs a download asked for; each is served from the shared files."""
    urls: list[str] = []

    def fetch(url: str, dest: Path, spec: data.DataFile, timeout: float) -> None:
        urls.append(url)
        shutil.copyfile(SHARED / dest.parent.name / spec.name, dest)

    monkeypatch.setattr(data, "_fetch", fetch)
    return urls


def _status(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize("command", COMMANDS, ids=[argv[0] for argv in COMMANDS])
def test_a_data_dir_that_does_not_exist_is_exit_2_and_nothing_is_made(
        command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fetched: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "typo"
    assert _status([*command, "--data-dir", str(typo)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"--data-dir: {typo}: no such folder" in err
    assert list(tmp_path.iterdir()) == [] and fetched == []


@needs_shared
def test_a_named_folder_gets_no_download_unasked_then_one_with_download(
        tmp_path: Path, fetched: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    empty = tmp_path / "data"
    empty.mkdir()
    argv = [*TRAIN, "--data-dir", str(empty), "--out", str(tmp_path / "t")]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: {empty / 'mnist'}/") and "give --download" in err
    assert fetched == [] and list(empty.iterdir()) == []
    assert main([*argv, "--download"]) == 0
    files = DATASETS["mnist"].files.values()
    assert sorted(url.rsplit("/", 1)[1] for url in fetched) == sorted(f.name for f in files)
    assert (tmp_path / "t" / "metrics.json").is_file()


def test_harness_data_dir_is_a_named_folder_too(tmp_path: Path, fetched: list[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match="give --download"):
        data.ensure_files("fashion-mnist")
    assert fetched == [] and list(tmp_path.iterdir()) == []


@needs_shared
def test_the_default_cache_folder_is_filled_unasked(tmp_path: Path, fetched: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "default_data_dir", lambda: tmp_path / "cache" / "data")
    paths = data.ensure_files("mnist")
    assert len(fetched) == 4
    assert all(path.parent == tmp_path / "cache" / "data" / "mnist" for path in paths.values())
