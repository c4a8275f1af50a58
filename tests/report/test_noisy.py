"""Timings taken on a busy machine: `harness report` marks them and warns at the top, and
`harness compare` calls their changes "noisy", never a regression. Synthetic runs only (hand-set
numbers and load records), so no training is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")  # the report extras; absent in a minimal install
pytest.importorskip("matplotlib")

from harness.cli import main  # noqa: E402
from harness.records import folders  # noqa: E402
from harness.report import compare_runs, write_report  # noqa: E402
from harness.report.compare import display_rows  # noqa: E402

from .fakes import job_id, machine_load, write_benchmark_json, write_metrics_only_job  # noqa: E402

MARK = "†"


def synthetic_run(run: Path, torch_noisy: tuple[bool, bool] = (False, False),
                  keras_noisy: tuple[bool, bool] = (False, False),
                  torch_slowdown: float = 1.0) -> Path:
    """mlp2 in both backends, one seed: (epoch noisy, latency noisy) per backend; torch's
    epoch and latency `torch_slowdown` times slower."""
    write_metrics_only_job(run, "mlp2", "torch", 0, 0.95, 1.0 * torch_slowdown,
                           0.1 * torch_slowdown, torch_noisy)
    write_metrics_only_job(run, "mlp2", "keras", 0, 0.95, 2.0, 0.2, keras_noisy)
    return run


def table_lines(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def cells(markdown: str, *words: str) -> list[str]:
    """The cells of the first Markdown table row holding every word."""
    row = next(line for line in table_lines(markdown) if all(w in line for w in words))
    return [cell.strip() for cell in row.strip("|").split("|")]


def edit_job(run: Path, backend: str, name: str, change) -> None:
    path = folders.job_dir(run, job_id("mlp2", backend)) / name
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def test_busy_figures_are_marked_and_counted_at_the_top(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run", torch_noisy=(False, True), keras_noisy=(True, False))
    bench = write_benchmark_json(tmp_path / "bench.json", noisy=True)
    out = write_report(run, tmp_path / "report", benchmark_jsons=[bench])
    markdown, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    # 2 jobs x (first, steady epoch) + 2 run latencies + 2 benchmarks = 8 timings; busy: the
    # keras epochs (first and steady), torch's ORT figure and the benchmark's
    warning = next(line for line in markdown.splitlines() if line.startswith("> **Warning:**"))
    assert "4 of 8 timings" in warning and "0.25" in warning
    assert markdown.index(warning) < markdown.index("## Overview")
    assert "<p class='warning'><strong>Warning:</strong> 4 of 8 timings" in html
    framework = cells(markdown, "mlp2", "0.9500")
    assert framework.count(f"2.000 {MARK}") == 2  # keras: first and steady epoch
    assert "1.000" in framework and f"1.000 {MARK}" not in framework  # torch: quiet
    assert f"+1.000 {MARK}" in framework  # the delta inherits its side's mark
    torch_ort = cells(markdown, "| run |", "torch", "onnxruntime")
    assert {f"0.100 {MARK}", f"0.120 {MARK}", f"9,524 {MARK}"} <= set(torch_ort)
    assert MARK not in "".join(cells(markdown, "| run |", "keras", "onnxruntime"))
    assert f"3.00× {MARK}" in cells(markdown, "pytest-benchmark", "io_binding", "×")
    latency = pd.read_csv(out / "tables" / "latency.csv").set_index(["source", "backend",
                                                                      "runtime"])
    assert latency.loc[("run", "torch", "onnxruntime"), "noisy"].item() is True
    assert latency.loc[("run", "keras", "onnxruntime"), "noisy"].item() is False
    framework_csv = pd.read_csv(out / "tables" / "framework.csv").iloc[0]
    assert framework_csv["noisy_steady_epoch_s_keras"] and not framework_csv[
        "noisy_steady_epoch_s_torch"]


def test_a_quiet_run_has_no_mark_and_no_warning(tmp_path: Path) -> None:
    out = write_report(synthetic_run(tmp_path / "run"), tmp_path / "report",
                       benchmark_jsons=[write_benchmark_json(tmp_path / "bench.json")])
    markdown = (out / "report.md").read_text()
    assert "Warning" not in markdown and "class='warning'" not in (out / "report.html"
                                                                   ).read_text()
    assert not [line for line in table_lines(markdown) if MARK in line]


def test_only_the_busy_epoch_marks_its_figure(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run")

    def busy_first_of_two(metrics: dict) -> dict:
        first = {**metrics["history"][0], "machine_load": machine_load(True)}
        metrics["history"] = [first, {**first, "epoch": 2, "machine_load": machine_load(False)}]
        return metrics

    edit_job(run, "torch", folders.METRICS_FILE, busy_first_of_two)
    markdown = (write_report(run, tmp_path / "report") / "report.md").read_text()
    torch = cells(markdown, "| mlp2 | torch |")  # the seeds table: steady epoch only
    assert torch[-1] == "1.000"
    assert "1 of 6 timings" in markdown  # torch's first epoch only


def test_a_one_epoch_run_has_no_steady_figure_to_mark_busy(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run", keras_noisy=(True, False))

    def one_busy_epoch(metrics: dict) -> dict:  # steady: none with fewer than two epochs
        metrics["history"] = metrics["history"][:1]
        metrics["timing"].update(steady_epoch_seconds=None, samples_per_second=None)
        return metrics

    edit_job(run, "keras", folders.METRICS_FILE, one_busy_epoch)
    out = write_report(run, tmp_path / "report")
    framework = pd.read_csv(out / "tables" / "framework.csv").iloc[0]
    assert framework["noisy_first_epoch_s_keras"]
    assert not framework["noisy_steady_epoch_s_keras"]
    # 2 first epochs + torch's steady one + 2 run latencies; busy: keras' first epoch only
    assert "1 of 5 timings" in (out / "report.md").read_text()


def test_timings_without_a_load_record_are_counted_as_unknown(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run")

    def without_load(record: dict) -> dict:
        for item in record.get("history", []) + [r["stats"] for r in record.get("records", [])]:
            item.pop("machine_load")
        return record

    for name in (folders.METRICS_FILE, folders.LATENCY_FILE):
        edit_job(run, "keras", name, without_load)
    markdown = (write_report(run, tmp_path / "report") / "report.md").read_text()
    assert "load is unknown for 2 training epoch(s) and 1 latency measurement(s)" in markdown
    assert not [line for line in table_lines(markdown) if MARK in line]


def test_compare_calls_a_busy_slowdown_noisy_not_a_regression(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = synthetic_run(tmp_path / "before")
    busy = synthetic_run(tmp_path / "busy", torch_noisy=(True, True), torch_slowdown=3.0)
    quiet = synthetic_run(tmp_path / "quiet", torch_slowdown=3.0)
    frame = compare_runs(before, busy).set_index(["backend", "metric"])
    torch = frame.loc["torch"]
    assert torch.loc["ort_cpu_p50_ms@batch1", "rel_delta"] == pytest.approx(2.0)
    assert torch.loc["ort_cpu_p50_ms@batch1", "flag"] == "noisy"
    assert torch.loc["steady_epoch_s", "flag"] == "noisy"
    assert torch.loc["test_accuracy", "flag"] == ""  # accuracy is no timing, and unchanged
    assert bool(torch.loc["steady_epoch_s", "b_noisy"]) and not torch.loc["steady_epoch_s",
                                                                          "a_noisy"]
    assert (frame.loc["keras", "flag"] == "").all()
    shown = next(row for row in display_rows(compare_runs(before, busy))
                 if row[2] == "torch" and row[3] == "ort_cpu_p50_ms@batch1")
    assert shown[5].endswith(MARK) and not shown[4].endswith(MARK)  # B was busy, A was not
    control = compare_runs(before, quiet).set_index(["backend", "metric"]).loc["torch"]
    assert set(control.loc[["ort_cpu_p50_ms@batch1", "steady_epoch_s"], "flag"]) == {
        "regression"}
    assert main(["compare", str(before), str(busy), "--fail-on-regression"]) == 0
    assert "noisy" in capsys.readouterr().out
    assert main(["compare", str(before), str(quiet), "--fail-on-regression"]) == 1
