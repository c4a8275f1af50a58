"""`harness compare`: changes per spec x backend, flagged only when beyond noise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")  # the report extras; absent in a minimal install
pytest.importorskip("matplotlib")

from harness.cli import main  # noqa: E402
from harness.records import folders  # noqa: E402
from harness.report import compare_runs  # noqa: E402

from .fakes import FAILED_JOB, SPECS, job_id, write_metrics_only_job  # noqa: E402

SEED_ACCURACIES = (0.95, 0.96, 0.97)  # std 0.01 within each run


def slow_down(run: Path, spec: str, backend: str, factor: float) -> None:
    path = folders.job_dir(run, job_id(spec, backend)) / folders.LATENCY_FILE
    latency = json.loads(path.read_text())
    for record in latency["records"]:
        if record["stats"]:
            record["stats"]["p50_ms"] *= factor
    path.write_text(json.dumps(latency))


def edit_metrics(run: Path, spec: str, backend: str, **changes: float) -> None:
    path = folders.job_dir(run, job_id(spec, backend)) / folders.METRICS_FILE
    metrics = json.loads(path.read_text())
    if "accuracy_delta" in changes:
        metrics["test_accuracy"] += changes["accuracy_delta"]
    if "epoch_factor" in changes:
        metrics["timing"]["steady_epoch_seconds"] *= changes["epoch_factor"]
    path.write_text(json.dumps(metrics))


def row(frame: pd.DataFrame, spec: str, backend: str, metric: str) -> pd.Series:
    return frame[(frame["spec"] == spec) & (frame["backend"] == backend)
                 & (frame["metric"] == metric)].iloc[0]


def test_a_run_against_itself_changes_nothing(run_dir: Path) -> None:
    frame = compare_runs(run_dir, run_dir)
    assert set(frame["spec"]) == set(SPECS)
    assert {"test_accuracy", "steady_epoch_s", "ort_cpu_p50_ms@batch1",
            "ort_cpu_p50_ms@batch32"} == set(frame["metric"])
    assert (frame["delta"] == 0).all() and (frame["flag"] == "").all()


def test_a_big_slowdown_is_flagged_and_small_changes_are_not(run_dir: Path,
                                                             run_copy: Path) -> None:
    slow_down(run_copy, "mlp2", "torch", 3.0)
    edit_metrics(run_copy, "mlp2", "keras", accuracy_delta=0.02, epoch_factor=1.03)
    edit_metrics(run_copy, "mlp2_bn", "torch", accuracy_delta=-0.002)
    frame = compare_runs(run_dir, run_copy)
    slow = row(frame, "mlp2", "torch", "ort_cpu_p50_ms@batch1")
    assert slow["rel_delta"] == pytest.approx(2.0)
    assert slow["flag"] == "regression" and slow["rule"] == "relative"
    better = row(frame, "mlp2", "keras", "test_accuracy")
    assert better["delta"] == pytest.approx(0.02) and better["flag"] == "improvement"
    assert row(frame, "mlp2", "keras", "steady_epoch_s")["flag"] == ""  # 3% < 5%
    assert row(frame, "mlp2_bn", "torch", "test_accuracy")["flag"] == ""  # 0.2 pp < 0.5 pp
    assert set(frame[frame["flag"] == "regression"]["metric"]) == {
        "ort_cpu_p50_ms@batch1", "ort_cpu_p50_ms@batch32"}


def test_with_several_seeds_the_spread_decides(tmp_path: Path) -> None:
    runs = {}
    for name, shift in (("a", 0.0), ("b", 0.01), ("c", 0.05)):
        runs[name] = tmp_path / name
        for seed, accuracy in enumerate(SEED_ACCURACIES):
            write_metrics_only_job(runs[name], "mlp2", "torch", seed, accuracy - shift, 1.0)
    within = row(compare_runs(runs["a"], runs["b"]), "mlp2", "torch", "test_accuracy")
    assert within["rule"] == "3 sigma" and within["threshold"] == pytest.approx(0.03)
    assert within["flag"] == ""  # 1 pp would pass the fixed rule, but seeds vary more
    beyond = row(compare_runs(runs["a"], runs["c"]), "mlp2", "torch", "test_accuracy")
    assert beyond["flag"] == "regression" and beyond["a_seeds"] == 3


def test_rows_in_one_run_only_say_so(run_dir: Path, run_copy: Path) -> None:
    shutil.rmtree(folders.job_dir(run_copy, job_id("mlp2_bn", "keras")))
    frame = compare_runs(run_dir, run_copy)
    gone = frame[(frame["spec"] == "mlp2_bn") & (frame["backend"] == "keras")]
    assert len(gone) and (gone["flag"] == "only in A").all()


def test_cli_compare_prints_flags_and_fails_only_when_asked(
        run_dir: Path, run_copy: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    slow_down(run_copy, "mlp2_bn", "keras", 2.0)
    csv = tmp_path / "compare.csv"
    assert main(["compare", str(run_dir), str(run_copy), "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "regression" in out and "2 regression(s)" in out
    assert len(pd.read_csv(csv)) > 0
    assert main(["compare", str(run_dir), str(run_copy), "--fail-on-regression",
                 "--flagged-only"]) == 1
    # run_dir holds a job that failed: a gate does not pass it, even against itself
    assert main(["compare", str(run_dir), str(run_dir), "--fail-on-regression"]) == 1
    assert f"B: {FAILED_JOB} failed at export" in capsys.readouterr().out
    shutil.rmtree(folders.job_dir(run_copy, FAILED_JOB))
    assert main(["compare", str(run_copy), str(run_copy), "--fail-on-regression"]) == 0
    assert main(["compare", str(run_dir), str(tmp_path / "missing")]) == 2
