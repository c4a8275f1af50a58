"""`harness report`: every table and plot is there, and the numbers are the run's numbers."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")  # the report extras; absent in a minimal install
pytest.importorskip("matplotlib")

from harness.cli import main  # noqa: E402
from harness.records import folders  # noqa: E402
from harness.report import load_run, write_report  # noqa: E402
from harness.report.benchmarks import load_benchmark_json  # noqa: E402
from harness.report.specs import spec_reference, study_of  # noqa: E402

from .fakes import BACKENDS, FAILED_ERROR, FAILED_JOB, SPECS, job_id, write_benchmark_json  # noqa: E402

TABLE_COLUMNS = {
    "framework": ["spec", "point", "study", "params", "test_accuracy_keras",
                  "test_accuracy_torch", "test_loss_keras", "test_loss_torch",
                  "final_train_loss_keras", "final_train_loss_torch", "first_epoch_s_keras",
                  "steady_epoch_s_torch", "delta_test_accuracy", "delta_test_loss",
                  "delta_final_train_loss", "delta_steady_epoch_s"],
    "seeds": ["spec", "point", "backend", "seeds", "test_accuracy_mean", "test_accuracy_std",
              "test_loss_mean", "test_loss_std", "steady_epoch_s"],  # timing: no spread
    "parity": ["spec", "point", "backend", "max_abs_diff", "native_accuracy", "onnx_accuracy",
               "accuracy_equal", "passed"],
    "latency": ["source", "spec", "point", "backend", "runtime", "provider", "mode",
                "batch_size", "provider_used", "p50_ms", "p90_ms", "throughput"],
    "speedup": ["source", "spec", "backend", "provider", "batch_size", "ort_mode", "ort_p50_ms",
                "native_p50_ms", "speedup"],
    "latency_unavailable": ["backend", "runtime", "provider", "status", "reason", "specs"],
    "failed": ["job_id", "spec", "backend", "seed", "failed_step", "error"],
}


def metrics(run_dir: Path, spec: str, backend: str) -> dict:
    return json.loads((folders.job_dir(run_dir, job_id(spec, backend)) / folders.METRICS_FILE)
                      .read_text())


def study() -> str:
    return study_of(spec_reference(Path("/nonexistent"), SPECS[0]))


@pytest.fixture(scope="module")
def report(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bench = write_benchmark_json(tmp_path_factory.mktemp("bench") / "bench.json")
    return write_report(run_dir, tmp_path_factory.mktemp("report"), benchmark_jsons=[bench])


def table(report: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(report / "tables" / f"{name}.csv", keep_default_na=False,
                       na_values=[""])


def test_every_table_is_a_csv_with_its_columns(report: Path) -> None:
    for name, columns in TABLE_COLUMNS.items():
        frame = table(report, name)
        assert set(columns) <= set(frame.columns), (name, set(columns) - set(frame.columns))
        assert len(frame) > 0, name
    assert (report / "tables" / f"study_{study()}.csv").is_file()


def test_framework_table_holds_the_metrics_of_both_backends(run_dir: Path,
                                                            report: Path) -> None:
    frame = table(report, "framework").set_index("spec")
    assert sorted(frame.index) == sorted(SPECS)
    for spec in SPECS:
        row = frame.loc[spec]
        for backend in BACKENDS:
            m = metrics(run_dir, spec, backend)
            assert row[f"test_accuracy_{backend}"] == pytest.approx(m["test_accuracy"])
            assert row[f"test_loss_{backend}"] == pytest.approx(m["test_loss"])
            assert row[f"final_train_loss_{backend}"] == pytest.approx(
                m["history"][-1]["train_loss"])
            assert row[f"first_epoch_s_{backend}"] == pytest.approx(
                m["timing"]["first_epoch_seconds"])
            assert row[f"steady_epoch_s_{backend}"] == pytest.approx(
                m["timing"]["steady_epoch_seconds"])
            assert row["params"] == m["params"]["total"]
        for metric in ("test_accuracy", "test_loss", "final_train_loss", "steady_epoch_s"):
            assert row[f"delta_{metric}"] == pytest.approx(
                row[f"{metric}_keras"] - row[f"{metric}_torch"])
        assert row["study"] == study()


def test_parity_table_shows_onnx_matches_native(report: Path) -> None:
    frame = table(report, "parity")
    assert len(frame) == len(SPECS) * len(BACKENDS)
    assert (frame["max_abs_diff"] < 1e-4).all()
    assert frame["accuracy_equal"].all() and frame["passed"].all()


def test_seeds_table_has_one_seed_each(run_dir: Path, report: Path) -> None:
    frame = table(report, "seeds")
    assert (frame["seeds"] == 1).all() and frame["test_accuracy_std"].isna().all()
    row = frame[(frame["spec"] == "mlp2") & (frame["backend"] == "torch")].iloc[0]
    assert row["test_accuracy_mean"] == pytest.approx(
        metrics(run_dir, "mlp2", "torch")["test_accuracy"])


def test_latency_merges_the_run_and_pytest_benchmark(report: Path) -> None:
    frame = table(report, "latency")
    assert set(frame["source"]) == {"run", "pytest-benchmark"}
    ort = frame[(frame["source"] == "run") & (frame["spec"] == "mlp2")
                & (frame["backend"] == "torch") & (frame["runtime"] == "onnxruntime")]
    assert sorted(ort["batch_size"]) == [1, 32]
    assert ort.set_index("batch_size").loc[1, "p50_ms"] == pytest.approx(0.05 * (1 + 1 / 8))
    bench = frame[frame["source"] == "pytest-benchmark"].set_index("runtime")
    assert bench.loc["onnxruntime", "p50_ms"] == pytest.approx(0.4)  # median 0.4 ms
    assert bench.loc["onnxruntime", "mode"] == "io_binding"
    assert bench.loc["onnxruntime", "batch_size"] == 64
    assert "test_something_else" in (report / "report.md").read_text()  # the skip is noted
    missing = table(report, "latency_unavailable")
    assert set(missing["provider"]) == {"cuda"} and (missing["status"] == "unavailable").all()


def test_speedup_is_native_over_onnxruntime(report: Path) -> None:
    frame = table(report, "speedup")
    run = frame[frame["source"] == "run"]
    assert len(run) == len(SPECS) * len(BACKENDS) * 2  # two batch sizes
    assert run["speedup"].to_numpy() == pytest.approx(
        (run["native_p50_ms"] / run["ort_p50_ms"]).to_numpy())
    bench = frame[frame["source"] == "pytest-benchmark"].iloc[0]
    assert bench["speedup"] == pytest.approx(3.0)


def test_failed_job_is_listed_with_its_step_and_error(report: Path) -> None:
    frame = table(report, "failed")
    assert frame["job_id"].tolist() == [FAILED_JOB]
    assert frame.iloc[0]["failed_step"] == "export"
    assert frame.iloc[0]["error"] == FAILED_ERROR
    assert FAILED_JOB in (report / "report.html").read_text()


def test_html_is_self_contained_with_every_plot(report: Path) -> None:
    html = (report / "report.html").read_text()
    plots = sorted((report / "plots").glob("*.png"))
    kinds = {re.sub(r"^study_.*_(loss|confusion|weights)$", r"\1", p.stem) for p in plots}
    assert kinds == {"accuracy_vs_latency", "latency_by_provider", "loss", "confusion",
                     "weights"}
    for plot in plots:
        assert base64.b64encode(plot.read_bytes()).decode() in html, plot.name
    assert html.count('<img alt="') == html.count('src="data:image/png;base64,') == len(plots)
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    assert "<link" not in html and "<script" not in html
    assert len(html) < 400_000  # small, even though every image is inside


def test_html_and_markdown_have_every_section(report: Path) -> None:
    html, markdown = (report / "report.html").read_text(), (report / "report.md").read_text()
    for title in ("Framework comparison", "ONNX parity", "Latency", f"Study: {study()}",
                  "Failed jobs"):
        assert title in html and f"## {title}" in markdown
    for plot in (report / "plots").glob("*.png"):
        assert f"(plots/{plot.name})" in markdown


def test_a_run_with_missing_pieces_still_gets_a_report(run_copy: Path) -> None:
    broken = folders.job_dir(run_copy, job_id("mlp2_bn", "torch"))
    (broken / folders.LATENCY_FILE).unlink()
    (broken / folders.EXPORT_RECORD_FILE).unlink()
    (folders.job_dir(run_copy, job_id("mlp2_bn", "keras")) / folders.METRICS_FILE).write_text(
        "{not json")
    out = write_report(run_copy)
    assert out == run_copy / folders.REPORT_DIR
    parity = table(out, "parity")
    assert len(parity) == 3
    framework = table(out, "framework").set_index("spec")
    assert pd.isna(framework.loc["mlp2_bn", "test_accuracy_keras"])
    assert "unreadable" in (out / "report.md").read_text()


def test_an_empty_run_gets_a_report_that_says_so(tmp_path: Path) -> None:
    out = write_report(tmp_path)
    assert "no finished jobs" in (out / "report.html").read_text()


def test_benchmark_without_extra_info_is_skipped_with_a_note(tmp_path: Path) -> None:
    notes: list[str] = []
    frame = load_benchmark_json(write_benchmark_json(tmp_path / "b.json"), notes)
    assert len(frame) == 2 and notes and "test_something_else" in notes[0]


def test_load_run_reads_jobs_history_and_latency(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert len(run.jobs) == len(SPECS) * len(BACKENDS) + 1
    assert len(run.history) == len(SPECS) * len(BACKENDS) * 2  # two epochs each
    assert len(run.confusion) == len(SPECS) * len(BACKENDS)
    assert all(m.sum() == 200 for m in run.confusion.values())  # limit_test=200


def test_cli_report(run_copy: Path, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(run_copy / folders.REPORT_DIR, ignore_errors=True)
    bench = write_benchmark_json(tmp_path / "bench.json")
    assert main(["report", str(run_copy), "--benchmark-json", str(bench)]) == 0
    assert (run_copy / folders.REPORT_DIR / "report.html").is_file()
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_sweep_points_get_rows_of_their_own(run_copy: Path) -> None:
    point = {"train.optimizer.learning_rate": 0.01}
    for backend in BACKENDS:
        source = folders.job_dir(run_copy, job_id("mlp2", backend))
        target = folders.job_dir(run_copy, f"mlp2--learning_rate-0.01--{backend}--seed0")
        shutil.copytree(source, target)
        job = json.loads((target / folders.JOB_FILE).read_text())
        job["config"].update(spec="mlp2--learning_rate-0.01", base_spec="mlp2",
                             overrides=point)
        (target / folders.JOB_FILE).write_text(json.dumps(job))
    out = write_report(run_copy)
    framework = table(out, "framework")
    rows = framework[framework["spec"] == "mlp2"]
    assert sorted(rows["point"].fillna("")) == ["", "train.optimizer.learning_rate=0.01"]
    assert "train.optimizer.learning_rate=0.01" in (out / "report.html").read_text()
