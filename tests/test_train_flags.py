"""`--set` and `--dataset` on train, export and bench (one spec changed as `harness run --set`
changes one point), what `harness train` prints (the mode the backend really runs, a summary
read from its record, the next commands), and a train folder given to `harness report`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.data import data_files
from harness.run.sweeps import apply_point
from harness.spec import load_spec, spec_hash

SMALL = ["--limit", "500", "--limit-test", "200", "--seed", "3", "--threads", "1"]


def _train_folder(folder: Path) -> Path:
    """A folder that passes for a `harness train` output (the files --from checks)."""
    folder.mkdir()
    for name in ("metrics.json", "spec.yaml", "final_weights.npz"):
        (folder / name).write_text("{}")
    return folder


def test_train_set_and_dataset_train_the_overridden_spec_and_say_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "t"
    assert main(["train", "--spec", "mlp2", "--backend", "torch", "--epochs", "1", *SMALL,
                 "--set", "layers[0].units=16", "--dataset", "fashion-mnist",
                 "--out", str(out)]) == 0
    expected = apply_point(load_spec("mlp2"), {"layers[0].units": 16,
                                               "input.dataset": "fashion-mnist"})
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["spec"] == {"name": "mlp2--units-16+dataset-fashion-mnist",
                               "hash": spec_hash(expected), "dataset": "fashion-mnist",
                               "data_sha256": data_files(expected.input)}
    assert "t10k-images-idx3-ubyte.gz" in metrics["spec"]["data_sha256"]
    assert metrics["params"]["total"] == 16 * 785 + 17 * 128 + 129 * 10
    assert "dataset: fashion-mnist" in (out / "spec.yaml").read_text()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "training mlp2--units-16+dataset-fashion-mnist with torch (eager) on cpu"
    assert printed[2].startswith("done: mlp2--units-16+dataset-fashion-mnist with torch (eager) "
                                 "on cpu, 1 epoch on 500 training images")
    assert printed[3].startswith(f"  test_accuracy {metrics['test_accuracy']:.4f}  test_loss "
                                 f"{metrics['test_loss']:.4f}  (200 test images)")
    assert printed[4].endswith("1 epoch: no steady epoch (give --epochs 2 or more; the step "
                               "time below needs only one)")
    # 500 images in batches of 128: 4 steps, a first call and 3 one-step windows
    assert printed[5].startswith("  training step: ") and "/step (" in printed[5]
    assert printed[6] == f"  wrote {out / 'metrics.json'} (the record) and model.pt"
    assert printed[7].startswith(f"next: harness export --backend torch --from {out} ")


def test_the_mode_printed_is_the_mode_recorded(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Keras on TensorFlow runs `fit` as a tf.function ("graph") unless asked for more: the
    header said "(eager)", the --compile default, while the record said "graph"."""
    pytest.importorskip("keras")
    out = tmp_path / "k"
    assert main(["train", "--spec", "mlp2", "--backend", "keras", "--epochs", "2", *SMALL,
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    recorded = metrics["environment"]["backend"]["compile_mode"]
    assert recorded == "graph"
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"training mlp2 with keras ({recorded}) on cpu"
    done = next(line for line in printed if line.startswith("done: "))
    assert done.startswith(f"done: mlp2 with keras ({recorded}) on cpu, 2 epochs")
    steady = metrics["timing"]["steady_epoch_seconds"]
    assert f"steady {steady:.3g} s (epoch 2)" in printed[printed.index(done) + 2]


def test_export_set_records_the_overridden_spec_and_keeps_torch_warnings_off_the_terminal(
        tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "m.onnx"
    result = subprocess.run(
        [sys.executable, "-m", "harness", "export", "--backend", "torch", "--spec", "mlp2",
         "--set", "layers[1].units=32", "--limit-test", "200", "--threads", "1",
         "--out", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""  # torch.export's FutureWarning (LeafSpec) went to the record
    record = json.loads(out.with_name("m.onnx.json").read_text())
    expected = apply_point(load_spec("mlp2"), {"layers[1].units": 32})
    assert record["spec"] == {"name": "mlp2--units-32", "hash": spec_hash(expected)}
    assert isinstance(record["onnx"]["converter_warnings"], list)
    assert result.stdout.startswith("exported mlp2--units-32 from torch")


BAD = [  # (argv, what the one line must say)
    (["train", "--spec", "mlp2", "--backend", "torch", "--set", "layers[0].units=8,16"],
     "--set layers[0].units: 2 values; one value per field here"),
    (["train", "--spec", "mlp2", "--backend", "torch", "--set", "layers[0].filters=8"],
     "--set layers[0].filters: mlp2: layers[0] (dense) has no field 'filters'"),
    (["train", "--spec", "mlp2", "--backend", "torch", "--set", "train.batch_size=8",
      "--set", "train.batch_size=16"], "--set train.batch_size: given twice"),
    (["train", "--spec", "mlp2", "--backend", "torch", "--set", "input.dataset=mnist",
      "--dataset", "fashion-mnist"], "--dataset: --set input.dataset is given too"),
    (["train", "--spec", "mlp2", "--backend", "torch", "--dataset", "cifar"],
     "--dataset: invalid choice: 'cifar'"),
    (["export", "--backend", "torch", "--from", "TRAINED", "--out", "x.onnx",
      "--dataset", "fashion-mnist"], "--dataset: changes --spec, which is not given"),
    (["bench", "--from", "TRAINED", "--set", "train.batch_size=8"],
     "--set: changes --spec, which is not given"),
    (["bench", "--spec", "mlp2", "--set", "train.optimizer.name=adam,sgd"],
     "--set train.optimizer.name: 2 values"),
    (["report", "TRAINED"], "RUN_DIR: TRAINED: a `harness train` folder, not a run: "
                            "`harness run --specs SPEC` makes a run folder to report on"),
]


@pytest.mark.parametrize(("argv", "said"), BAD, ids=[" ".join(a)[:50] for a, _ in BAD])
def test_a_bad_override_or_a_train_folder_for_report_is_one_line_and_exit_2(
        argv: list[str], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    trained = str(_train_folder(tmp_path / "trained"))
    argv = [trained if arg == "TRAINED" else arg for arg in argv]
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code)
    assert status == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert said.replace("TRAINED", trained) in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trained"]  # nothing written
