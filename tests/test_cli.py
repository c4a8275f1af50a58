"""The command line: thin wrappers whose output and exit codes a user relies on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.data import SPLIT_SIZES, load_raw
from harness.spec import list_specs

FRAMEWORKS = ("torch", "tensorflow", "keras", "onnx", "onnxruntime")


def exit_status(argv: list[str]) -> int:
    """main's status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.fixture()
def places(tmp_path: Path) -> dict[str, str]:
    """Paths the bad arguments point at: a file, a folder that is no run, a missing path, a
    run folder (its run.json), a symbolic link to nothing."""
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("not a folder")
    deep = tmp_path / "deep.yaml"
    deep.write_text("input: " + "[" * 3000 + "]" * 3000 + "\n")
    run = tmp_path / "a_run"
    run.mkdir()
    (run / "run.json").write_text('{"kind": "run", "jobs": []}')
    link = tmp_path / "a_link"
    link.symlink_to(tmp_path / "nowhere")
    return {"FILE": str(a_file), "FOLDER": str(tmp_path), "MISSING": str(tmp_path / "missing"),
            "DEEP": str(deep), "UNDER_FILE": str(a_file / "x.onnx"), "RUN": str(run),
            "LINK": str(link)}


TRAIN = ["train", "--spec", "mlp2", "--backend", "torch"]
EXPORT = ["export", "--backend", "torch", "--spec", "mlp2", "--out", "x.onnx"]
RUN = ["run", "--specs", "mlp2"]
BENCH = ["bench", "--spec", "mlp2"]
BAD_ARGUMENTS = [  # (argv, what the one line must name)
    (["list", "--foo"], "--foo"),
    (["show"], "spec"),
    (["show", "no_such_model"], "no_such_model"),
    (["show", "MISSING.yaml"], "MISSING.yaml"),
    (["show", "DEEP"], "DEEP"),
    (["show", "x" * 5000], "unknown spec"),
    (["train", "--spec", "mlp2"], "--backend"),
    ([*TRAIN, "--limit", "70000"], "--limit: 70000: expected 1 to 60000 (at most 60000 training "
                                   "images in mnist"),
    ([*TRAIN, "--limit", "0"], "--limit: 0"),
    ([*TRAIN, "--limit", "1e3"], "--limit: '1e3'"),
    ([*TRAIN, "--limit-test", "10001"], "--limit-test: 10001: expected 1 to 10000"),
    ([*TRAIN, "--epochs", "0"], "--epochs: 0: expected a positive integer"),
    ([*TRAIN, "--epochs", "1.5"], "--epochs: '1.5'"),
    ([*TRAIN, "--batch-size", "100000"], "--batch-size: 100000"),
    ([*TRAIN, "--seed", "-1"], "--seed: -1"),
    ([*TRAIN, "--seed", "4294967296"], "--seed: 4294967296: expected an integer >= 0 (at most "
                                       "4294967295)"),
    ([*TRAIN, "--seed", "true"], "--seed: 'true'"),
    ([*TRAIN, "--threads", "0"], "--threads: 0"),
    ([*TRAIN, "--threads", "5000"], "--threads: 5000"),
    ([*TRAIN, "--device", "tpu"], "--device"),
    ([*TRAIN, "--out", "FILE"], "--out: FILE: exists and is not a folder"),
    ([*TRAIN, "--out", "UNDER_FILE"], "--out: UNDER_FILE"),
    ([*TRAIN, "--data-dir", "FILE"], "--data-dir: FILE: exists and is not a folder"),
    ([*TRAIN, "--out", "y" * 5000], "not a usable path"),
    ([*TRAIN, "--out", ""], "--out: ''"),
    ([*TRAIN, "--checkpoint", "LINK"], "--checkpoint: LINK: is a symbolic link to"),
    (["train", "--spec", "no_such_model", "--backend", "torch"], "no_such_model"),
    (["train", "--spec", "mlp2", "--backend", "jax"], "--backend"),
    (["export", "--backend", "torch", "--out", "x.onnx"], "--spec, --from"),
    ([*EXPORT, "--opset", "13"], "--opset: 13: expected an integer >= 14 (at most 18)"),
    ([*EXPORT, "--opset", "19"], "--opset: 19"),
    ([*EXPORT, "--limit-test", "10001"], "--limit-test: 10001"),
    ([*EXPORT, "--threads", "-2"], "--threads: -2"),
    ([*EXPORT, "--from", "MISSING"], "--from: MISSING: no such folder"),
    ([*EXPORT, "--from", "FOLDER"], "--from: FOLDER: not a `harness train` run folder"),
    ([*EXPORT, "--from", "y" * 5000], "not a usable path"),
    (["export", "--backend", "torch", "--spec", "mlp2", "--out", "FOLDER"], "--out: FOLDER"),
    (["parity"], "--spec, --from"),
    (["parity", "--spec", "mlp2", "--limit-test", "0"], "--limit-test: 0"),
    (["parity", "--spec", "mlp2", "--opset", "x"], "--opset: 'x'"),
    (["parity", "--from", "FOLDER"], "--from: FOLDER"),
    (["bench"], "--spec, --from"),
    ([*BENCH, "--batch-sizes", "1,0"], "--batch-sizes: 0: expected a positive integer"),
    ([*BENCH, "--batch-sizes", "1,100000"], "--batch-sizes: 100000"),
    ([*BENCH, "--batch-sizes", ","], "--batch-sizes: ','"),
    ([*BENCH, "--warmup", "-1"], "--warmup: -1"),
    ([*BENCH, "--min-runs", "0"], "--min-runs: 0"),
    ([*BENCH, "--min-seconds", "inf"], "--min-seconds: inf: expected a finite number >= 0"),
    ([*BENCH, "--min-seconds", "1e9"], "--min-seconds: 1e9"),
    ([*BENCH, "--threads", "0"], "--threads: 0"),
    ([*BENCH, "--providers", "cpu,tpu"], "--providers: unknown 'tpu'"),
    ([*BENCH, "--backends", "jax"], "--backends: unknown 'jax'"),
    ([*BENCH, "--graph-optimization", "max"], "--graph-optimization"),
    ([*BENCH, "--from", "MISSING"], "--from: MISSING"),
    ([*BENCH, "--out", "FILE"], "--out: FILE"),
    ([*BENCH, "--data-dir", "FILE"], "--data-dir: FILE"),
    (["bench", "--spec", "no_such_model"], "no_such_model"),
    (["import", "MISSING.keras"], "--out"),
    (["import", "MISSING.keras", "--out", "x.yaml"], "MISSING.keras: no such file"),
    (["import", "FILE", "--out", "x.yaml"], "harness import reads .keras, .h5, .onnx files"),
    (["import", "MISSING.keras", "--out", "FOLDER"], "--out: FOLDER"),
    (["import", "MISSING.keras", "--out", "x.yaml", "--samples", "0"], "--samples: 0"),
    (["import", "MISSING.keras", "--out", "x.yaml", "--backends", "jax"], "--backends"),
    (["run"], "--specs"),
    ([*RUN, "--limit", "70000"], "--limit: 70000"),
    ([*RUN, "--limit-test", "0"], "--limit-test: 0"),
    ([*RUN, "--latency-min-seconds", "-1"], "--latency-min-seconds: -1"),
    ([*RUN, "--latency-min-seconds", "nan"], "--latency-min-seconds: nan"),
    ([*RUN, "--latency-min-runs", "0"], "--latency-min-runs: 0"),
    ([*RUN, "--seeds", "1,-1"], "--seeds: -1"),
    ([*RUN, "--batch-sizes", "0"], "--batch-sizes: 0"),
    ([*RUN, "--opset", "1"], "--opset: 1"),
    ([*RUN, "--epochs", "-3"], "--epochs: -3"),
    ([*RUN, "--threads", "x"], "--threads: 'x'"),
    ([*RUN, "--backends", "torch,jax"], "--backends: unknown 'jax'"),
    ([*RUN, "--providers", ""], "--providers"),
    ([*RUN, "--out", "FILE"], "--out: FILE"),
    ([*RUN, "--out", ""], "--out: '': expected a path"),  # not the current folder
    ([*RUN, "--out", "LINK"], "--out: LINK: is a symbolic link to"),
    ([*RUN, "--out", "LINK/run"], "--out: LINK/run: LINK is a symbolic link to"),
    ([*RUN, "--data-dir", ""], "--data-dir: ''"),
    ([*RUN, "--data-dir", "FILE"], "--data-dir: FILE"),
    ([*RUN, "--set", "x"], "--set: 'x': expected PATH=VALUE"),
    ([*RUN, "--set", "layers[0].units=1,,2"], "--set: 'layers[0].units=1,,2': an empty value"),
    ([*RUN, "--set", "layers[0].units=inf"], "expected a finite number"),
    ([*RUN, "--set", "layers[9].units=3"], "--set layers[9].units: mlp2: index 9 is out of "
                                           "range"),
    ([*RUN, "--set", "layers[0].filters=3"], "--set layers[0].filters: mlp2: layers[0] (dense) "
                                             "has no field 'filters'"),
    ([*RUN, "--set", "layers[0].units=abc"], "--set layers[0].units=abc: mlp2: layers[0].units: "
                                             "input should be a valid integer"),
    ([*RUN, "--set", "train.epochs=1", "--set", "train.epochs=2"], "--set train.epochs: given "
                                                                   "twice"),
    (["run", "--specs", "no_such_model"], "no_such_model"),
    (["run", "--specs", "zz*"], "--specs 'zz*' matches no zoo spec"),
    (["report"], "RUN_DIR"),
    (["report", "MISSING"], "RUN_DIR: MISSING: no such folder"),
    (["report", "y" * 5000], "not a usable path"),
    (["report", ""], "RUN_DIR: '': expected a path"),  # not the current folder
    (["report", "FOLDER"], "RUN_DIR: FOLDER: not a `harness run` folder (neither run.json nor "
                           "jobs/ in it)"),
    (["report", "RUN", "--benchmark-json", "MISSING"], "--benchmark-json: MISSING"),
    (["report", "RUN", "--out", "FILE"], "--out: FILE"),
    (["report", "RUN", "--out", "LINK"], "--out: LINK: is a symbolic link to"),
    (["report", "RUN", "--out", ""], "--out: ''"),
    (["retime"], "RUN_DIR"),
    (["retime", "MISSING"], "RUN_DIR: MISSING: no such folder"),
    (["retime", "FOLDER"], "FOLDER: not a `harness run` folder (run.json is missing)"),
    (["retime", "--epochs", "1", "FOLDER"], "--epochs: 1: expected an integer >= 2"),
    (["retime", "--windows", "1", "FOLDER"], "--windows: 1: expected an integer >= 2"),
    (["retime", "--training-seconds", "0", "FOLDER"], "--training-seconds: 0"),
    (["retime", "--latency-seconds", "nan", "FOLDER"], "--latency-seconds: nan"),
    (["compare", "FOLDER"], "RUN_B"),
    (["compare", "RUN", "MISSING"], "RUN_B: MISSING: no such folder"),
    (["compare", "FOLDER", "RUN"], "RUN_A: FOLDER: not a `harness run` folder"),
    (["compare", "RUN", "FOLDER"], "RUN_B: FOLDER: not a `harness run` folder"),
    (["compare", "RUN", ""], "RUN_B: ''"),
    (["compare", "FOLDER", "FOLDER", "--threshold-sigma", "0"], "--threshold-sigma: 0: expected "
                                                                "a finite number > 0"),
    (["compare", "FOLDER", "FOLDER", "--threshold-sigma", "nan"], "--threshold-sigma: nan"),
    (["compare", "FOLDER", "FOLDER", "--min-rel", "-0.1"], "--min-rel: -0.1"),
    (["compare", "FOLDER", "FOLDER", "--min-rel", "inf"], "--min-rel: inf"),
    (["compare", "FOLDER", "FOLDER", "--min-accuracy", "2"], "--min-accuracy: 2: expected a "
                                                             "finite number >= 0 and <= 1"),
    (["compare", "FOLDER", "FOLDER", "--csv", "FOLDER"], "--csv: FOLDER: is a folder"),
    (["compare", "RUN", "RUN", "--csv", "LINK"], "--csv: LINK: is a symbolic link to"),
]


def _fill(argv: list[str], places: dict[str, str]) -> list[str]:
    """The place holders (FILE, FOLDER, ...) in `argv` replaced by their paths."""
    pattern = re.compile(r"\b(" + "|".join(places) + r")\b")
    return [pattern.sub(lambda match: places[match[1]], arg) for arg in argv]


@pytest.mark.parametrize(("argv", "named"), BAD_ARGUMENTS,
                         ids=[" ".join(argv)[:60] for argv, _ in BAD_ARGUMENTS])
def test_bad_arguments_exit_2_with_one_line_naming_them(
        argv: list[str], named: str, places: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # a run that wrongly started would write here, not in the repo
    assert exit_status(_fill(argv, places)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert _fill([named], places)[0] in lines[0]
    assert "error" in lines[0] and "Traceback" not in captured.err
    assert not (tmp_path / "results").exists()  # nothing ran, nothing was written


def test_every_subcommand_has_bad_argument_cases() -> None:
    subcommands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    assert set(subcommands) == {argv[0] for argv, _ in BAD_ARGUMENTS}


def test_bad_arguments_stop_before_any_framework_is_imported(places: dict[str, str]) -> None:
    cases = [_fill(argv, places) for argv, _ in BAD_ARGUMENTS]
    code = ("import sys\nfrom harness.cli import main\n"
            f"for argv in {cases!r}:\n"
            "    try:\n        status = main(argv)\n"
            "    except SystemExit as exc:\n        status = exc.code\n"
            "    assert status == 2, (argv, status)\n"
            f"loaded = [m for m in {FRAMEWORKS!r} if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=places["FOLDER"])
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("dataset", list(SPLIT_SIZES))
def test_the_limits_checked_while_parsing_are_the_datasets_sizes(dataset: str) -> None:
    raw = load_raw(dataset, download=False)
    sizes = SPLIT_SIZES[dataset]
    assert (len(raw.y_train), len(raw.y_test)) == (sizes["training"], sizes["test"])
    args = build_parser().parse_args([*TRAIN, "--limit", str(sizes["training"]),
                                      "--limit-test", str(sizes["test"])])
    assert (args.limit, args.limit_test) == (sizes["training"], sizes["test"])


@pytest.mark.parametrize(("argv", "named"), [
    (["train", "--spec", "mlp2", "--backend", "torch", "--limit", "70000"], "--limit: 70000"),
    (["run", "--specs", "mlp2", "--set", "layers[9].units=3"], "--set layers[9].units"),
])
def test_the_process_exits_2_with_one_line(argv: list[str], named: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and named in result.stderr
    assert result.stdout == ""


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
