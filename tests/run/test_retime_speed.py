"""`harness retime RUN_DIR` with the timing protocol, end to end: a real run (mlp2 and a twin
spec that trains the same model, Keras and PyTorch, 1 epoch on 300 images), timed with tiny
windows; records, aliases, A/A, the repeat pass, resume, and a busy record timed again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.measure.speed_load import load_speed, speed_dir
from harness.measure.speed_records import SpecSpeed
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig
from harness.spec import load_spec, training_hash
from harness.spec.loader import zoo_dir

FAST = ["--windows", "2", "--training-seconds", "0.05", "--latency-seconds", "0.01"]


@pytest.fixture(scope="module")
def twin_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    pytest.importorskip("onnxruntime")
    base = tmp_path_factory.mktemp("speed")
    twin = base / "mlp2_twin.yaml"
    yaml_text = (zoo_dir() / "mlp2.yaml").read_text()
    twin.write_text(yaml_text.replace("name: mlp2", "name: mlp2_twin")
                    .replace("validation: test", "validation: none", 1))
    out = base / "run"
    config = RunConfig(specs=["mlp2", str(twin)], backends=["keras", "torch"], seeds=[0],
                       batch_sizes=[1], epochs=1, limit=300, limit_test=100, threads=1,
                       latency_warmup=0, latency_min_runs=2, latency_min_seconds=0.0)
    assert run_matrix(config, out, show=lambda line: None)["ok"] == 4
    return out


def test_twins_share_a_training_hash_and_others_do_not() -> None:
    assert training_hash(load_spec("mlp2")) != training_hash(load_spec("mlp3"))
    assert training_hash(load_spec("gs_mlp512_128_relu_adam")) == training_hash(
        load_spec("mlp512_128_relu_adam"))


def test_retime_times_each_model_once_with_aa_and_a_repeat(twin_run: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    assert main(["retime", str(twin_run), *FAST]) == 0
    data = load_speed(twin_run)
    assert list(data.specs) == ["mlp2"] and data.specs["mlp2"].aliases == ["mlp2_twin"]
    assert list(data.repeat) == ["mlp2"] and not data.problems
    record = data.specs["mlp2"]
    kinds = {(c.kind, c.a, c.b, c.batch_size, c.aa) for c in record.comparisons}
    assert kinds == {("training", "keras", "torch", 128, False),
                     ("training", "torch#1", "torch#2", 128, True),
                     ("native", "keras", "torch", 1, False),
                     ("native", "torch#1", "torch#2", 1, True),
                     ("native", "keras", "torch", 32, False),
                     ("native", "torch#1", "torch#2", 32, True),
                     *{("onnxruntime", b, "onnxruntime", n, False)
                       for b in ("keras", "torch") for n in (1, 32)}}
    for comparison in record.comparisons:
        labels = [w.label for w in comparison.windows]
        assert labels == [comparison.a, comparison.b, comparison.b, comparison.a]
        assert comparison.ratio.ci_low <= comparison.ratio.estimate <= comparison.ratio.ci_high
    assert record.backends["keras"].startswith("Keras 3 on TensorFlow")
    assert record.steps_per_epoch == 3 and set(record.epoch_estimate) == {"keras", "torch"}
    assert data.floor("training") is not None
    assert record.environment["machine"]["cpu_flags"] is not None
    # resumed: a quiet record is kept
    assert main(["retime", str(twin_run), *FAST]) == 0
    assert "timed already" in capsys.readouterr().out


def test_a_busy_record_is_timed_again(twin_run: Path) -> None:
    path = speed_dir(twin_run) / "specs" / "mlp2.json"
    if not path.is_file():
        assert main(["retime", str(twin_run), *FAST, "--no-repeat"]) == 0
    data = json.loads(path.read_text())
    data["comparisons"][0]["busy"] = True
    data["started_utc"] = "2000-01-01T00:00:00Z"
    path.write_text(json.dumps(data))
    assert main(["retime", str(twin_run), *FAST, "--no-repeat"]) == 0
    again = SpecSpeed.model_validate_json(path.read_bytes())
    assert again.started_utc != "2000-01-01T00:00:00Z"


def test_an_unknown_noise_spec_is_one_line(twin_run: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    assert main(["retime", str(twin_run), "--noise-specs", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--noise-specs: nope: not a spec of the run" in err[0]
