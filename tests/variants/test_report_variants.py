"""The report of a small run with variants: the variant table (speed-up, accuracy change, gate,
peak memory, file size), the fastest variant within the gate, and the Pareto plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

from harness.latency.variants import FAILS_ACCURACY  # noqa: E402
from harness.records import folders  # noqa: E402
from harness.records.io import write_json_atomic  # noqa: E402

from .conftest import always_class_zero  # noqa: E402

JOB = "tiny_mlp--torch--seed0"
VARIANTS = {"eager", "opt-all", "opt-disable", "int8-dynamic", "int8-static"}


def _job(run_dir: Path, trained_run: Path, ort_variants: tuple[str, ...]) -> None:
    """A job folder as `harness run` leaves it, its latency step run for real (variants
    included), CPU only, at batch 1 and 32."""
    from harness.export.driver import weights_source
    from harness.latency.bench import bench_backend, input_batch, latency_result
    from harness.latency.variants import VariantBench, VariantSettings

    work = folders.job_dir(run_dir, JOB)
    source = weights_source(None, trained_run)
    variants = VariantBench(VariantSettings(ort_variants=ort_variants, limit_test=300))
    records = bench_backend(source, "torch", providers=["cpu"], batch_sizes=[1, 32],
                            onnx_path=work / folders.ONNX_FILE, x=input_batch(source, 32),
                            threads=1, warmup=0, min_runs=2, min_seconds=0.0,
                            variants=variants)
    result = latency_result(source.spec, {}, {}, records, {})
    write_json_atomic(work / folders.LATENCY_FILE, {**result, **variants.result()})
    write_json_atomic(work / folders.JOB_FILE, {
        "schema_version": 1, "kind": "job", "job_id": JOB, "status": "ok",
        "config": {"spec": "tiny_mlp", "backend": "torch", "seed": 0, "overrides": {}}})


@pytest.fixture(scope="module")
def report(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.latency.variants import files
    from harness.report import write_report

    run_dir = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(files.BUILDERS, "int8-dynamic", always_class_zero)
        _job(run_dir, trained_run, ("opt-disable", "int8-dynamic", "int8-static"))
    write_json_atomic(run_dir / folders.RUN_FILE, {"schema_version": 1, "kind": "run",
                                                  "jobs": []})
    return write_report(run_dir)


def _csv(report: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(report / "tables" / f"{name}.csv", keep_default_na=False)


def test_the_variant_table_has_every_variant_with_accuracy_memory_and_size(report) -> None:
    table = _csv(report, "variants")
    assert set(table["variant"]) == VARIANTS
    assert set(table["batch_size"]) == {1, 32}
    assert (table["provider"] == "cpu").all() and (table["seeds"] == 1).all()
    assert (table["peak_rss_mb"] > 0).all()
    onnx = table[table["runtime"] == "onnxruntime"]
    assert (onnx["file_bytes"].astype(float) > 0).all()
    assert (table["accuracy"].astype(float).between(0, 1)).all()
    eager = table[table["variant"] == "eager"]
    assert (eager["speedup_vs_eager"] == 1).all()
    assert eager["delta_accuracy"].astype(float).abs().max() < 1e-3  # the float32 model
    for _, batch in table.groupby("batch_size"):
        assert batch["pareto_front"].astype(str).eq("True").any()


def test_the_gate_marks_the_broken_variant_in_the_report(report) -> None:
    table = _csv(report, "variants")
    gates = table.groupby("variant")["gate"].agg(set).to_dict()
    assert gates.pop("int8-dynamic") == {FAILS_ACCURACY}
    assert all(gate == {"ok"} for name, gate in gates.items() if name != "int8-static")
    page = (report / "report.md").read_text(encoding="utf-8")
    assert FAILS_ACCURACY in page


def test_the_best_variant_within_the_gate_per_batch_size(report) -> None:
    best, table = _csv(report, "variants_best"), _csv(report, "variants")
    assert list(best["batch_size"]) == [1, 32]
    for _, row in best.iterrows():
        same = table[(table["batch_size"] == row["batch_size"]) & (table["gate"] == "ok")]
        assert row["variant"] != "int8-dynamic"
        assert row["p50_ms"] == same["p50_ms"].min()


def test_the_report_shows_the_section_and_the_pareto_plot(report) -> None:
    plot = report / "plots" / "variants_pareto_tiny_mlp.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (report / "report.md").read_text(encoding="utf-8")
    assert "## Variants: speed against accuracy" in page
    assert "(plots/variants_pareto_tiny_mlp.png)" in page
    html = (report / "report.html").read_text(encoding="utf-8")
    assert 'id="variants"' in html and "tiny_mlp: test accuracy against p50" in html


def test_a_run_without_variants_has_no_variant_section(tmp_path: Path) -> None:
    from harness.report.load import load_run
    from harness.report.variants import variant_sections, variant_tables

    work = folders.job_dir(tmp_path, JOB)
    write_json_atomic(work / folders.JOB_FILE, {"job_id": JOB, "status": "ok", "config": {}})
    write_json_atomic(work / folders.LATENCY_FILE, {"kind": "latency", "records": [
        {"runtime": "native", "backend": "torch", "provider": "cpu", "mode": "native",
         "batch_size": 1, "status": "ok", "stats": {"p50_ms": 1.0}}]})
    assert variant_sections(variant_tables(load_run(tmp_path))) == []


def test_the_pareto_front_is_strict() -> None:
    from harness.report.variants import pareto_front

    points = pd.DataFrame({"p50_ms": [1.0, 2.0, 3.0, 4.0, 0.5],
                           "accuracy": [0.90, 0.90, 0.95, 0.94, 0.10]})
    front: Any = pareto_front(points)
    assert sorted(front.index) == [0, 2, 4]  # 1: as accurate as 0 but slower; 3: dominated
