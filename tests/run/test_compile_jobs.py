"""Compile modes as a matrix dimension: `harness run --compile eager,compiled` plans a job per
mode (the mode in the id only when not eager), a compiled job trains and times its native
predictor compiled beside the eager reference, and a mode the platform cannot run is recorded
`unavailable` with the reason while the run goes on.

torch.compile itself takes about a minute on two cores (tests/variants/test_compiled.py, slow);
here the torch backend's `compiled` is a stand-in that returns an uncompiled twin, so what is
tested is how the mode travels through the job, in seconds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import UsageError
from harness.records import folders
from harness.records.io import read_json
from harness.records.models import JobRecord
from harness.run.folder import write_summary
from harness.run.job import Job, Placement
from harness.run.matrix import status_text
from harness.run.plan import RunConfig, plan_jobs
from harness.spec import load_spec

TINY = """name: tiny_mlp
input: {dataset: mnist, shape: [784], scale: 255.0}
layers:
  - {type: dense, units: 16, activation: relu}
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: sgd, learning_rate: 0.01, momentum: 0.0, nesterov: false}
  loss: categorical_crossentropy
  batch_size: 32
  epochs: 2
  seed: 0
  shuffle: true
  validation: none
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_mlp.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


def _config(spec: Path, **changes: Any) -> RunConfig:
    options = {"specs": [str(spec)], "backends": ["torch"], "batch_sizes": [1], "limit": 256,
               "limit_test": 64, "threads": 1, "latency_warmup": 0, "latency_min_runs": 2,
               "latency_min_seconds": 0.0, **changes}
    return RunConfig(**options)


def test_a_job_per_mode_and_eager_ids_as_before(tiny: Path) -> None:
    jobs = plan_jobs(_config(tiny, backends=["torch", "keras"],
                             compile_modes=["compiled", "eager"])).jobs
    assert [(job.job_id, job.compile) for job in jobs] == [
        ("tiny_mlp--torch--seed0", "eager"), ("tiny_mlp--torch--seed0--compiled", "compiled"),
        ("tiny_mlp--keras--seed0", "eager"), ("tiny_mlp--keras--seed0--compiled", "compiled")]
    (eager,) = plan_jobs(_config(tiny)).jobs
    assert eager == jobs[0]  # the default plans the very same job, resume key included


@pytest.mark.parametrize(("modes", "message"), [
    (["jit"], "--compile: unknown compile mode 'jit'"), ([], "--compile: no mode given")])
def test_a_bad_compile_mode_is_refused_when_planned(tiny: Path, modes: list[str],
                                                     message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plan_jobs(_config(tiny, compile_modes=modes))


def _run(job: Job, spec_file: Path, work: Path) -> dict[str, Any]:
    """The job run in this process (as its own process would run it) into `work`."""
    from harness.run.job_process import run_job

    now = time.time()
    return run_job(job, load_spec(spec_file), work, Placement(executor="local"), now,
                   now).record()


def _twin(backend: Any, model: Any) -> Any:
    """The torch backend's `compiled`, less torch.compile: a twin with the same weights."""
    twin = backend.build(model.spec)
    backend.set_weights(twin, backend.get_weights(model))
    return twin


def test_a_compiled_job_trains_and_times_its_mode_beside_eager(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from harness.backends.pytorch.backend import TorchBackend

    compiled_calls: list[str] = []
    monkeypatch.setattr(TorchBackend, "compiled",
                        lambda self, model: compiled_calls.append(self.device) or
                        _twin(self, model))
    (job,) = plan_jobs(_config(tiny, compile_modes=["compiled"])).jobs
    record = _run(job, tiny, tmp_path / job.job_id)
    assert (record["status"], record["error"]) == ("ok", None), record["error"]
    assert record["config"]["compile"] == "compiled"
    metrics = read_json(tmp_path / job.job_id / folders.METRICS_FILE)
    assert metrics["requested"]["compile"] == "compiled"
    assert metrics["timing"]["first_epoch_seconds"] > 0  # the compiling epoch, kept apart
    assert metrics["timing"]["steady_epochs"] == 1
    latency = read_json(tmp_path / job.job_id / folders.LATENCY_FILE)
    native = {record["variant"]: record for record in
              [*latency["records"], *latency["variant_records"]]
              if record["runtime"] == "native"}
    assert set(native) == {"eager", "compiled"}  # its mode, and eager: the reference
    assert native["compiled"]["status"] == "ok" and native["compiled"]["first_call_seconds"] > 0
    assert latency["settings"]["compile_modes"] == ["eager", "compiled"]
    assert compiled_calls == ["cpu", "cpu"]  # training, then the latency step's predictor


def test_an_eager_job_times_only_the_eager_framework(tiny: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    (job,) = plan_jobs(_config(tiny, epochs=1)).jobs
    record = _run(job, tiny, tmp_path / job.job_id)
    assert record["status"] == "ok", record["error"]
    latency = read_json(tmp_path / job.job_id / folders.LATENCY_FILE)
    assert [r["mode"] for r in latency["records"] if r["runtime"] == "native"] == ["native"]
    assert latency.get("variant_records", []) == []
    assert read_json(tmp_path / job.job_id / folders.METRICS_FILE)["requested"]["compile"] == \
        "eager"


def test_a_mode_the_platform_cannot_run_is_recorded_unavailable(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from harness.backends import BackendUnavailable
    from harness.backends.pytorch.backend import TorchBackend

    def no_compiler(self: TorchBackend, model: Any) -> Any:
        raise BackendUnavailable("torch.compile (inductor) on the CPU needs a C++ compiler")

    monkeypatch.setattr(TorchBackend, "compiled", no_compiler)
    run_dir = tmp_path / "run"
    eager, compiled = plan_jobs(_config(tiny, compile_modes=["eager", "compiled"])).jobs
    record = _run(compiled, tiny, folders.job_dir(run_dir, compiled.job_id))
    assert (record["status"], record["failed_step"]) == (folders.UNAVAILABLE, "train")
    assert record["error"] == ("torch --compile compiled: torch.compile (inductor) on the CPU "
                               "needs a C++ compiler")
    assert not (folders.job_dir(run_dir, compiled.job_id) / folders.ONNX_FILE).exists()
    recorded = JobRecord.model_validate(record)
    assert status_text(recorded) == f"unavailable: {record['error']}"
    # the eager job never ran: missing
    summary = write_summary(run_dir, [eager, compiled], {compiled.job_id: recorded})
    assert [(u.job_id, u.reason) for u in summary.unavailable] == [(compiled.job_id,
                                                                     record["error"])]
    assert [failure.job_id for failure in summary.failed] == [eager.job_id]
    assert summary.ok == 0 and summary.jobs == 2
    assert read_json(run_dir / folders.SUMMARY_FILE) == summary.record()


def test_harness_train_says_a_mode_is_unavailable_in_one_line(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from harness.backends import BackendUnavailable
    from harness.backends.pytorch.backend import TorchBackend
    from harness.training import CompileUnavailable, TrainConfig, train_and_evaluate

    def no_compiler(self: TorchBackend, model: Any) -> Any:
        raise BackendUnavailable("no C++ compiler")

    monkeypatch.setattr(TorchBackend, "compiled", no_compiler)
    with pytest.raises(CompileUnavailable, match="^torch --compile compiled: no C\\+\\+"):
        train_and_evaluate(tiny, TrainConfig(backend="torch", epochs=1, limit=64, limit_test=32,
                                             threads=1, compile="compiled"),
                           out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written
    with pytest.raises(ValueError, match="compile mode must be one of"):
        train_and_evaluate(tiny, TrainConfig(backend="torch", epochs=1, limit=64,
                                             limit_test=32, threads=1, compile="jit"))


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--specs", "mlp2", "--compile", "eager,jit"],
     "harness run: error: --compile: unknown 'jit'; expected one of ['eager', 'compiled']"),
    (["run", "--specs", "mlp2", "--ort-variants", "int4"],
     "harness run: error: --ort-variants: unknown 'int4'; expected one of ['all', "),
    (["run", "--specs", "mlp2", "--accuracy-gate", "1.5"],
     "harness run: error: --accuracy-gate: 1.5: expected a finite number >= 0 and <= 1"),
    (["train", "--spec", "mlp2", "--backend", "torch", "--compile", "eager,compiled"],
     "harness train: error: --compile: invalid choice: 'eager,compiled'")])
def test_bad_options_are_one_line_and_exit_2(argv: list[str], message: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    with pytest.raises(SystemExit) as stop:
        main([*argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_harness_run_takes_the_modes_variants_and_gate_into_its_jobs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the command line, into each job; a report of the run gives them back as the
    options that re-run it (an eager job's mode left out: it is the default)."""
    from harness.cli import build_parser, main
    from harness.report.reproduce import option_tokens, run_command
    from harness.run.executors import child

    from .stand_in import StandIn

    stand_in = StandIn(tmp_path)
    monkeypatch.setattr(child, "job_command", lambda: stand_in.command)
    out = tmp_path / "run"
    assert main(["run", "--specs", "mlp2", "--backends", "torch", "--batch-sizes", "1",
                 "--compile", "compiled,eager", "--ort-variants", "int8-static,fp16",
                 "--accuracy-gate", "0.5", "--fresh-processes", "--out", str(out)]) == 0
    assert sorted(stand_in.calls()) == ["mlp2--torch--seed0", "mlp2--torch--seed0--compiled"]
    configs = {job.name: read_json(job / folders.JOB_FILE)["config"]
               for job in folders.finished_job_dirs(out)}
    for job_id, config in configs.items():
        assert (config["compile"], config["ort_variants"], config["accuracy_gate"]) == (
            "compiled" if job_id.endswith("--compiled") else "eager",
            ["int8-static", "fp16"], 0.5)
    tokens = {job_id: option_tokens(config) for job_id, config in configs.items()}
    assert tokens["mlp2--torch--seed0"] == ["--accuracy-gate", "0.5", "--batch-sizes", "1",
                                            "--ort-variants", "int8-static,fp16"]
    assert tokens["mlp2--torch--seed0--compiled"] == [
        "--accuracy-gate", "0.5", "--batch-sizes", "1", "--compile", "compiled",
        "--ort-variants", "int8-static,fp16"]
    command = run_command(configs["mlp2--torch--seed0--compiled"], ["mlp2"], ["torch"], None,
                          str(out))
    args = build_parser().parse_args(command.split()[1:])
    assert (args.compile, args.ort_variants, args.accuracy_gate) == (
        ["compiled"], ["int8-static", "fp16"], 0.5)


def test_harness_train_compiled_and_a_mode_it_cannot_run(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from harness.backends import BackendUnavailable
    from harness.backends.pytorch.backend import TorchBackend
    from harness.cli import main

    argv = ["train", "--spec", str(tiny), "--backend", "torch", "--epochs", "2", "--limit",
            "128", "--limit-test", "32", "--threads", "1", "--compile", "compiled"]
    monkeypatch.setattr(TorchBackend, "compiled", _twin)
    assert main([*argv, "--out", str(tmp_path / "ok")]) == 0
    assert read_json(tmp_path / "ok" / folders.METRICS_FILE)["requested"]["compile"] == \
        "compiled"

    def no_compiler(self: TorchBackend, model: Any) -> Any:
        raise BackendUnavailable("no C++ compiler")

    monkeypatch.setattr(TorchBackend, "compiled", no_compiler)
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "no")]) == 3
    err = capsys.readouterr().err
    assert err == "error: torch --compile compiled: no C++ compiler\n"
    assert not (tmp_path / "no").exists()
