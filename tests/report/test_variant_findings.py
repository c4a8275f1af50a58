"""The report of a run with variants and compiled jobs, on hand-set numbers (no training, no
timing): the Findings name the best runtime x variant per study at batch 1 and 32 within the
accuracy gate, every such figure equals the `variants_studies` row it links to, a compiled
job adds its compiled predictor and training without doubling the eager job's figures, and a
compiled mode the platform cannot run is shown as unavailable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from harness.latency.variants import FAILS_ACCURACY  # noqa: E402
from harness.records import folders  # noqa: E402
from harness.records.io import write_json_atomic  # noqa: E402
from harness.report import write_report  # noqa: E402

from .fakes import job_id, job_record, latency_record  # noqa: E402

STUDY = "mlp_depth_bn_dropout"
SPEEDS = {"mlp2": 1.0, "mlp2_bn": 1.5, "mlp3": 2.0}  # every p50 of a spec times this
# p50 ms at batch 1 and 32 per (runtime, variant, mode)
P50 = {("native", "eager", "native"): (0.4, 2.0),
       ("onnxruntime", "opt-all", "session_run"): (0.1, 0.5),
       ("onnxruntime", "int8-static", "session_run"): (0.05, 0.6),
       ("onnxruntime", "int8-dynamic", "session_run"): (0.08, 0.55),
       ("native", "compiled", "native"): (0.2, 1.0)}
REFERENCE_ACCURACY = 0.97


def _entry(variant: str, runtime: str, passed: bool) -> dict[str, Any]:
    accuracy = REFERENCE_ACCURACY if passed else 0.5
    return {"backend": "torch", "variant": variant, "runtime": runtime, "status": "ok",
            "reference_accuracy": REFERENCE_ACCURACY, "onnx": {"bytes": 1000},
            "accuracy": {"cpu": {"accuracy": accuracy, "argmax_agreement": 1.0,
                                 "max_abs_diff": 0.0, "gate": {"passed": passed}}}}


def _latency(spec: str, variants: list[tuple[str, str, str]]) -> dict[str, Any]:
    """latency.json of a job that timed `variants`: the float32 export and the eager
    framework among its `records`, the others among `variant_records`. int8-static fails the
    gate on mlp3 only."""
    records, extra, entries = [], [], {}
    for runtime, variant, mode in variants:
        passed = not (spec == "mlp3" and variant == "int8-static")
        entries[variant] = _entry(variant, runtime, passed)
        for size, p50 in zip((1, 32), P50[(runtime, variant, mode)], strict=True):
            record = latency_record(runtime, "torch", "cpu", mode, size, p50 * SPEEDS[spec])
            record.update(variant=variant, fails_accuracy=not passed,
                          first_call_seconds=3.0 if variant == "compiled" else None,
                          memory={"peak_rss_mb": 300.0, "increase_mb": 10.0})
            (records if variant in ("eager", "opt-all") else extra).append(record)
    return {"schema_version": 1, "kind": "latency", "records": records,
            "variant_records": extra, "variants": list(entries.values())}


def _job(run: Path, spec: str, backend: str, mode: str, epochs_s: tuple[float, float] | None,
         latency: dict[str, Any] | None, status: str = "ok", error: str | None = None) -> None:
    name = job_id(spec, backend) + ("" if mode == "eager" else f"--{mode}")
    out = folders.job_dir(run, name)
    record = job_record(spec, backend, 0, status=status, error=error)
    record["job_id"] = name
    record["config"].update(compile=mode, study=STUDY)
    write_json_atomic(out / folders.JOB_FILE, record)
    if epochs_s is not None:
        first, steady = epochs_s
        write_json_atomic(out / folders.METRICS_FILE, {
            "schema_version": 1, "kind": "train", "spec": {"name": spec}, "backend": backend,
            "seed": 0, "test_accuracy": 0.97, "test_loss": 0.1,
            "history": [{"epoch": e, "train_loss": 0.2, "train_accuracy": 0.9,
                         "val_loss": None, "val_accuracy": None, "seconds": s}
                        for e, s in enumerate((first, steady, steady), start=1)],
            "timing": {"first_epoch_seconds": first, "steady_epoch_seconds": steady},
            "params": {"total": 100}})
    if latency is not None:
        write_json_atomic(out / folders.LATENCY_FILE, latency)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("variants") / "run"
    ort = [key for key in P50 if key[0] == "onnxruntime"]
    for spec in SPEEDS:
        _job(run, spec, "torch", "eager", (2.0, 1.0),
             _latency(spec, [("native", "eager", "native"), *ort]))
    # the compiled job times the export and eager again (its reference), and compiled
    _job(run, "mlp2", "torch", "compiled", (10.0, 0.5),
         _latency("mlp2", [("native", "eager", "native"), *ort,
                           ("native", "compiled", "native")]))
    _job(run, "mlp2", "keras", "compiled", None, None, status=folders.UNAVAILABLE,
         error="keras --compile compiled: no XLA here")
    write_json_atomic(run / folders.RUN_FILE, {"schema_version": 1, "kind": "run", "jobs": []})
    return write_report(run)


def _csv(report: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(report / "tables" / f"{name}.csv", keep_default_na=False,
                       na_values=[""])


def _findings(report: Path) -> str:
    text = (report / "report.md").read_text(encoding="utf-8")
    findings = text.split("## Findings")[1].split("\n## ")[0]
    return re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", findings)


def test_the_findings_name_the_best_variant_per_study_and_batch(report: Path) -> None:
    study = _findings(report).split(f"### Study: {STUDY}")[1].split("###")[0]
    # batch 1: int8-static is the fastest in mlp2 and mlp2_bn but fails the gate on mlp3,
    # so the best within the gate in every spec is int8-dynamic (fastest in mlp3 only)
    assert ("at batch 1, ONNX Runtime int8-dynamic of the PyTorch export (cpu, session_run): "
            "the fastest in 1 of 3 specs, 5.00× the eager framework's speed (median)") in study
    assert ("at batch 32, ONNX Runtime opt-all of the PyTorch export (cpu, session_run): the "
            "fastest in 3 of 3 specs, 4.00× the eager framework's speed (median)") in study


def test_every_variant_figure_equals_the_row_it_links_to(report: Path) -> None:
    figures = _csv(report, "findings")
    cited = figures[figures["table"] == "variants_studies"]
    assert len(cited) == 6  # fastest, specs and speed-up at batch 1 and 32
    studies = _csv(report, "variants_studies").set_index("label")
    text = (report / "report.md").read_text(encoding="utf-8")
    for _, figure in cited.iterrows():
        row = studies.loc[figure["rows"]]
        assert figure["statistic"] == "value" and bool(row["best"])
        assert figure["value"] == pytest.approx(float(row[figure["column"]]))
        assert f"[{figure['text']}](#t-variants_studies)" in text
    assert '<a id="t-variants_studies"></a>' in text


def test_the_study_table_counts_specs_gates_and_wins(report: Path) -> None:
    studies = _csv(report, "variants_studies")
    at_1 = studies[studies["batch_size"] == 1].set_index("variant")
    assert (at_1["specs"] == 3).all()
    assert (at_1.loc["int8-static", "within_gate"], at_1.loc["int8-static", "fastest"]) == (2, 2)
    assert not at_1.loc["int8-static", "best"] and at_1.loc["int8-dynamic", "best"]
    # compiled was timed in mlp2 only: within the gate there, not in every spec
    assert (at_1.loc["compiled", "timed"], at_1.loc["compiled", "best"]) == (1, False)
    assert studies.groupby("batch_size")["best"].sum().tolist() == [1, 1]


def test_a_compiled_job_adds_its_predictor_without_doubling_the_eager_job(
        report: Path) -> None:
    table = _csv(report, "variants")
    mlp2 = table[(table["spec"] == "mlp2") & (table["batch_size"] == 1)].set_index("variant")
    assert (mlp2["seeds"] == 1).all()  # the eager job's rows only, not the compiled job's too
    assert mlp2.loc["compiled", "speedup_vs_eager"] == pytest.approx(2.0)
    assert mlp2.loc["compiled", "first_call_s"] == pytest.approx(3.0)  # the compilation
    assert mlp2.loc["int8-static", "gate"] == "ok"
    mlp3 = table[(table["spec"] == "mlp3")].set_index(["variant", "batch_size"])
    assert mlp3.loc[("int8-static", 1), "gate"] == FAILS_ACCURACY


def test_compiled_training_is_its_own_table_not_a_second_seed(report: Path) -> None:
    training = _csv(report, "compiled_training").set_index("backend")
    torch = training.loc["torch"]
    assert torch["status"] == "ok"
    assert (torch["first_epoch_s_compiled"], torch["steady_epoch_s_compiled"]) == (10.0, 0.5)
    assert torch["steady_speedup"] == pytest.approx(2.0)  # eager 1.0 s / compiled 0.5 s
    assert training.loc["keras", "status"] == "unavailable: keras --compile compiled: no XLA here"
    framework = _csv(report, "framework").set_index("spec")
    assert framework.loc["mlp2", "seeds_torch"] == 1  # the eager job alone
    assert framework.loc["mlp2", "steady_epoch_s_torch"] == pytest.approx(1.0)
    # a mode the platform cannot run is no failed job
    assert _csv(report, "failed").empty
    overview = _csv(report, "overview").set_index("Unnamed: 0")["value"]
    assert overview["jobs"] == "5 (4 ok, 0 failed, 1 unavailable)"
