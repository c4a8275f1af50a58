"""`harness compare` of runs made with different settings (1 epoch against 2, 2 threads against
1, another torch, another CPU): it names each setting that differs and gives no verdict unless
asked (--allow-different); a gate refuses to compare them (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pd = pytest.importorskip("pandas")  # the report extras; absent in a minimal install

from harness.cli import main  # noqa: E402
from harness.records import folders  # noqa: E402

from .fakes import job_id, write_metrics_only_job  # noqa: E402

GATE = "--fail-on-regression"
ALLOW = "--allow-different"


def edit(run: Path, spec: str, backend: str, seed: int, file: str, **fields: Any) -> None:
    """Set `fields` in the job's job.json `config` (file JOB_FILE) or its metrics.json."""
    path = folders.job_dir(run, job_id(spec, backend, seed)) / file
    record = json.loads(path.read_text())
    (record["config"] if file == folders.JOB_FILE else record).update(fields)
    path.write_text(json.dumps(record))


def environment(torch: str = "2.13.0+cpu", cpu: str = "AMD EPYC", hostname: str = "vm-a",
                load: float = 0.3) -> dict[str, Any]:
    """metrics.json `environment` as harness.measure.environment writes it."""
    return {"harness": "0.1.0", "commit": "1ea4cfa",
            "machine": {"hostname": hostname, "platform": "Linux-6.1-x86_64", "python": "3.11.7",
                        "cpu": cpu, "logical_cores": 2, "usable_cores": 2, "memory_gib": 7.7,
                        "load_average_1m": load},
            "packages": {"numpy": "2.4.6", "torch": torch, "onnxruntime": "1.31.1"},
            "gpu": None, "onnxruntime_build": {"version": "1.31.1"},
            "backend": {"framework": "torch", "torch": torch, "intra_op_threads": 2,
                        "compile_mode": "eager", "compile_seconds": 0.01}}


def one_job_run(run: Path, accuracy: float, epoch_s: float, seeds: tuple[int, ...] = (0,),
                **config: Any) -> Path:
    for seed in seeds:
        write_metrics_only_job(run, "mlp2", "torch", seed, accuracy, epoch_s, 0.1)
        edit(run, "mlp2", "torch", seed, folders.JOB_FILE, **config)
    return run


@pytest.fixture()
def unlike_runs(tmp_path: Path) -> tuple[Path, Path]:
    """The issue's runs: B trained 2 epochs on 1 thread, A 1 epoch on 2; B is 10.6 pp more
    accurate and 18.5 % faster per epoch."""
    return (one_job_run(tmp_path / "a", 0.80, 1.0, epochs=1, threads=2),
            one_job_run(tmp_path / "b", 0.906, 0.815, epochs=2, threads=1))


def compare(a: Path, b: Path, *options: str) -> int:
    return main(["compare", str(a), str(b), *options])


def test_runs_with_different_settings_get_the_differences_and_no_verdict(
        unlike_runs: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "compare.csv"
    assert compare(*unlike_runs, "--csv", str(csv)) == 0
    out = capsys.readouterr().out
    assert ("2 setting(s) differ between the runs; values shown without verdicts "
            "(--allow-different judges them):\n  epochs: A 1, B 2\n  threads: A 2, B 1\n") in out
    assert "no verdicts: 3 compared values shown without verdicts, as 2 setting(s) differ" in out
    assert "improvement" not in out and "regression" not in out
    assert pd.read_csv(csv)["flag"].isna().all()


def test_allow_different_judges_the_changes_anyway(
        unlike_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert compare(*unlike_runs, ALLOW, GATE) == 0  # improvements only
    out = capsys.readouterr().out
    assert "2 setting(s) differ between the runs; changes judged anyway" in out
    assert "  epochs: A 1, B 2\n" in out
    assert "0 regression(s), 2 improvement(s) beyond noise in 3 compared values" in out


def test_a_gate_refuses_runs_with_different_settings_in_one_line(
        unlike_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert compare(*unlike_runs, GATE) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: --fail-on-regression: RUN_A and RUN_B were run with different settings "
        "(epochs: A 1, B 2; threads: A 2, B 1); a gate compares runs made alike: rerun one "
        "with the other's settings, or add --allow-different to judge them anyway\n")


def test_seeds_versions_machine_and_the_spec_itself_are_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """... but not the host's name or load, the data folder, nor a job in one run only."""
    a = one_job_run(tmp_path / "a", 0.9, 1.0, data_dir="/data/a")
    b = one_job_run(tmp_path / "b", 0.9, 1.0, seeds=(0, 1), spec_hash="0123456789abcdef",
                    providers=["cpu"], limit=None, data_dir="/data/b")
    write_metrics_only_job(a, "mlp2_bn", "torch", 0, 0.9, 1.0)
    edit(a, "mlp2_bn", "torch", 0, folders.JOB_FILE, epochs=5)  # not in B: not compared
    edit(a, "mlp2", "torch", 0, folders.METRICS_FILE, environment=environment())
    for seed in (0, 1):
        edit(b, "mlp2", "torch", seed, folders.METRICS_FILE, environment=environment(
            torch="2.12.0+cpu", cpu="Intel Xeon", hostname="vm-b", load=1.9))
    assert compare(a, b) == 0
    a_hash = json.loads((folders.job_dir(a, job_id("mlp2", "torch")) / folders.JOB_FILE)
                        .read_text())["config"]["spec_hash"]
    # torch's own record of its version is the package's: said once
    assert ("6 setting(s) differ between the runs; values shown without verdicts "
            "(--allow-different judges them):\n"
            "  limit: A 500, B default\n"
            "  providers: A [cpu, cuda], B [cpu]\n"
            "  seed: A 0, B 0, 1\n"
            f"  spec mlp2: A {a_hash}, B 0123456789abcdef\n"
            "  machine cpu: A AMD EPYC, B Intel Xeon\n"
            "  package torch: A 2.13.0+cpu, B 2.12.0+cpu\n") in capsys.readouterr().out
