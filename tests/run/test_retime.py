"""`harness retime`: busy timings of a finished run timed again, one job per spec x backend,
and the report showing those quiet timings in place of the busy ones, labelled.

One real run (mlp2 in PyTorch, two seeds, 2 epochs on 300 images) and its real re-timing;
the machine load in the records is then set by the test, so that what counts as busy does not
depend on how busy the machine running the tests is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.measure.machine_load import NOISY_OTHERS_CORES
from harness.records import folders
from harness.records.io import read_json, write_json_atomic
from harness.run.display import PlainDisplay
from harness.run.executors.local import LocalExecutor
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig
from harness.run.retime import plan_retimes, retime_dir, retime_run

JOB_IDS = ["mlp2--torch--seed0", "mlp2--torch--seed1"]


def _load(noisy: bool) -> dict[str, Any]:
    cores = 2 * NOISY_OTHERS_CORES if noisy else 0.0
    return {"others_cores": cores, "cores": 2, "seconds": 1.0, "noisy": noisy,
            "threshold_cores": NOISY_OTHERS_CORES, "load_average_1m": 0.1}


def _set_load(job_dir: Path, noisy: bool, latency_too: bool = True) -> None:
    """Every epoch (and latency figure) of the job as timed on a busy or a quiet machine."""
    metrics = read_json(job_dir / folders.METRICS_FILE)
    for epoch in metrics["history"]:
        epoch["machine_load"] = _load(noisy)
    write_json_atomic(job_dir / folders.METRICS_FILE, metrics)
    latency = read_json(job_dir / folders.LATENCY_FILE)
    for record in latency["records"]:
        if record.get("stats") and latency_too:
            record["stats"]["machine_load"] = _load(noisy)
    write_json_atomic(job_dir / folders.LATENCY_FILE, latency)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("retime") / "run"
    config = RunConfig(specs=["mlp2"], backends=["torch"], seeds=[0, 1], batch_sizes=[1],
                       epochs=3, limit=300, limit_test=100, threads=1, latency_warmup=0,
                       latency_min_runs=2, latency_min_seconds=0.0)
    assert run_matrix(config, out, show=lambda line: None)["ok"] == 2
    return out


@pytest.fixture()
def run_dir(finished_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def _retime(run_dir: Path, **options: Any) -> tuple[dict[str, Any], list[str]]:
    lines: list[str] = []
    summary = retime_run(run_dir, LocalExecutor(), PlainDisplay(lines.append), **options)
    return summary, lines


def test_only_busy_keys_are_planned_once_with_their_lowest_seed(run_dir: Path) -> None:
    for job_id in JOB_IDS:
        _set_load(folders.job_dir(run_dir, job_id), noisy=False)
    assert plan_retimes(run_dir) == []
    _set_load(folders.job_dir(run_dir, JOB_IDS[1]), noisy=True)  # only seed 1 was busy
    [job] = plan_retimes(run_dir, epochs=4)
    original = read_json(folders.job_dir(run_dir, JOB_IDS[0]) / folders.JOB_FILE)["config"]
    assert job.job_id == JOB_IDS[0] and job.epochs == 4
    changed = {key for key, value in job.record().items() if original.get(key) != value}
    assert changed == {"epochs", "config_hash"}  # the same job in every other setting
    assert [j.job_id for j in plan_retimes(run_dir, everything=True, specs=["cnn3_k3"])] == []
    assert len(plan_retimes(run_dir, everything=True, specs=["mlp2"])) == 1


def test_retimed_quiet_timings_replace_busy_ones_in_the_report(run_dir: Path) -> None:
    from harness.report import write_report
    from harness.report.load import load_run

    for job_id in JOB_IDS:
        _set_load(folders.job_dir(run_dir, job_id), noisy=True)
    before = load_run(run_dir).jobs.set_index("job_id")
    summary, lines = _retime(run_dir)
    assert summary["ok"] == 1 and summary["jobs"] == 1, lines
    timed = folders.job_dir(retime_dir(run_dir), JOB_IDS[0])
    metrics = read_json(timed / folders.METRICS_FILE)
    assert len(metrics["history"]) == 2  # the default: two full epochs (300 images here)
    _set_load(timed, noisy=False)

    run = load_run(run_dir)
    jobs = run.jobs.set_index("job_id")
    for job_id in JOB_IDS:  # both seeds' timings from the one quiet re-timing
        assert jobs.at[job_id, "timed"].startswith("re-timed: 2 epochs")
        assert jobs.at[job_id, "steady_epoch_s"] == metrics["timing"]["steady_epoch_seconds"]
        assert not jobs.at[job_id, "noisy_steady_epoch_s"]
        assert jobs.at[job_id, "test_accuracy"] == before.at[job_id, "test_accuracy"]
        latency = run.latency[run.latency["job_id"] == job_id]
        assert not latency.empty and not latency["noisy"].any()
    retimed_p50 = sorted(r["stats"]["p50_ms"] for r in read_json(
        timed / folders.LATENCY_FILE)["records"] if r.get("stats"))
    assert sorted(run.latency[run.latency["job_id"] == JOB_IDS[1]]["p50_ms"]) == retimed_p50

    report = (write_report(run_dir, run_dir / "report") / "report.md").read_text()
    assert "come from a quiet re-timing" in report and "re-timed: 2 epochs" in report
    assert f"`harness retime {run_dir}`" in report  # among the commands that reproduce it


def test_a_busy_retiming_is_not_used_and_runs_again(run_dir: Path) -> None:
    from harness.report.load import load_run

    _set_load(folders.job_dir(run_dir, JOB_IDS[0]), noisy=True, latency_too=False)
    assert _retime(run_dir)[0]["ok"] == 1
    timed = folders.job_dir(retime_dir(run_dir), JOB_IDS[0])
    _set_load(timed, noisy=True)
    jobs = load_run(run_dir).jobs.set_index("job_id")
    assert jobs.at[JOB_IDS[0], "timed"] == "run" and jobs.at[JOB_IDS[0], "noisy_steady_epoch_s"]

    summary, lines = _retime(run_dir)  # busy again: timed again, not skipped as finished
    assert summary["ok"] == 1
    assert any("its re-timing was busy too" in line for line in lines), lines
    _set_load(timed, noisy=False)
    summary, lines = _retime(run_dir)  # quiet now: kept
    assert any("1 already finished, 0 to run" in line for line in lines), lines
    assert load_run(run_dir).jobs.set_index("job_id").at[JOB_IDS[0], "timed"] != "run"


def test_retime_keeps_the_run_records_and_holds_the_folder_lock(run_dir: Path) -> None:
    from harness.run.folder import run_folder_lock

    record = folders.job_dir(run_dir, JOB_IDS[0]) / folders.JOB_FILE
    _set_load(record.parent, noisy=True)
    before = record.read_bytes()
    with run_folder_lock(run_dir):  # a `harness run` holds the folder
        assert main(["retime", str(run_dir), "--whole-epochs"]) == 2  # held
    assert not (retime_dir(run_dir) / folders.JOBS_DIR).exists()
    assert main(["retime", str(run_dir), "--whole-epochs", "--epochs", "2"]) == 0
    assert record.read_bytes() == before
    assert json.loads((retime_dir(run_dir) / folders.RUN_FILE).read_text())["kind"] == "retime"


def test_retime_refuses_specs_the_run_does_not_have(run_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retime", str(run_dir), "--specs", "mlp2,cnn3_k3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--specs: cnn3_k3: not a spec of" in err[0] and "mlp2" in err[0]
