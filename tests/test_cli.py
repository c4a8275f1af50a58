"""The command line: thin wrappers whose output and exit codes a user relies on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.spec import list_specs


def test_list_shows_every_zoo_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in list_specs():
        assert name in out


def test_list_starts_without_importing_a_framework() -> None:
    code = ("import sys; from harness.cli import main; main(['list']); "
            "loaded = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; "
            "sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_show_prints_keras_like_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "mlp5_bn"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 206,570" in out
    assert "Trainable params: 205,930" in out
    assert "Non-trainable params: 640" in out
    assert "(None, 512)" in out and "adam(" in out


def test_invalid_spec_is_one_message_and_exit_2(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {shape: [784]}\nlayers: [{type: bn}]\ntrain: {}\n")
    assert main(["show", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: layers[0].type: expected one of" in err
    assert "Traceback" not in err


def test_bad_arguments_are_rejected_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--backend", "torch", "--spec", "mlp2", "--epochs", "0"])
    assert info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_train_writes_metrics_and_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "run"
    assert main(["train", "--backend", "torch", "--spec", "mlp2", "--epochs", "2",
                 "--limit", "1000", "--limit-test", "500", "--seed", "7", "--threads", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch   1/2" in printed and "epoch   2/2" in printed and "test_accuracy" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 7 and metrics["epochs"] == 2 and metrics["n_test"] == 500
    assert (out / "model.pt").is_file() and (out / "initial_weights.npz").is_file()


def test_train_accepts_a_users_yaml_file(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    spec = tmp_path / "my_net.yaml"
    spec.write_text(
        "input: {shape: [784]}\n"
        "layers:\n  - {type: dense, units: 32, activation: relu}\n"
        "  - {type: dense, units: 10, activation: softmax}\n"
        "train:\n  optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}\n"
        "  batch_size: 64\n  epochs: 1\n")
    out = tmp_path / "run"
    assert main(["train", "--backend", "torch", "--spec", str(spec), "--limit", "500",
                 "--limit-test", "200", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["spec"]["name"] == "my_net"


def test_cuda_request_without_gpu_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["train", "--backend", "torch", "--spec", "mlp2", "--device", "cuda",
                 "--limit", "100", "--limit-test", "100"]) == 3
    assert "cuda" in capsys.readouterr().err.lower()
