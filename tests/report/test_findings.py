"""The report's Findings and reproduction tables on a synthetic run (hand-set numbers, no
training): every figure equals the table it cites, verdicts hold at their boundaries, "not
run" rows carry a command the CLI accepts, and ambiguous published figures say so."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")  # the report extras; absent in a minimal install
pytest.importorskip("matplotlib")

from harness.cli import build_parser  # noqa: E402
from harness.records.io import write_json_atomic  # noqa: E402
from harness.report import write_report  # noqa: E402
from harness.report.findings import row_label  # noqa: E402
from harness.report.reproduce import compact_specs  # noqa: E402
from harness.report.reproduction import (  # noqa: E402
    AGREE,
    DIFFERS,
    REPRODUCED,
    verdict,
    zoo_studies,
)
from harness.run.plan import resolve_specs  # noqa: E402
from harness.spec import load_spec  # noqa: E402

from .fakes import write_study_job  # noqa: E402

PUBLISHED = {spec: load_spec(spec).reference.published_test_accuracy
             for spec in ("mlp2", "mlp2_bn", "lenet5_dropout")}
# Accuracy over published, per seed: mlp2 keras exactly on the 0.5 pp boundary, torch just
# beyond; mlp2_bn keras 0.7 pp off with a 0.4 pp seed std (within 2 x std), torch 0.2 pp off.
OFFSETS = {("mlp2", "keras"): (0.005, 0.005, 0.005), ("mlp2", "torch"): (-0.00501,) * 3,
           ("mlp2_bn", "keras"): (0.003, 0.007, 0.011), ("mlp2_bn", "torch"): (0.001, 0.002,
                                                                               0.003)}
# steady epoch seconds; mlp2_bn's Keras epochs are timed on a busy machine
EPOCH_S = {("mlp2", "keras"): 2.0, ("mlp2", "torch"): 1.0, ("mlp2_bn", "keras"): 4.5,
           ("mlp2_bn", "torch"): 1.5}
ORT_MS = {"mlp2": {1: 0.05, 32: 0.4}, "mlp2_bn": {1: 0.1, 32: 0.5}}
NATIVE_MS = {"mlp2": {1: 0.3, 32: 1.0}, "mlp2_bn": {1: 0.4, 32: 2.0}}  # torch; keras x 2
LEARNED = [[5 if label == predicted else 1 for predicted in range(3)] for label in range(3)]
ONE_CLASS = [[0, 4, 0], [0, 7, 0], [0, 5, 0]]  # every image predicted as class 1
RUN_OPTIONS = {"providers": ["cpu"], "batch_sizes": [1, 32], "epochs": 3, "limit": 500,
               "limit_test": 200, "threads": 2, "device": "cpu", "opset": 18,
               "latency_warmup": 5, "latency_min_runs": 20, "latency_min_seconds": 0.5,
               "strict_providers": False, "data_dir": "/data"}


def native_ms(spec: str, backend: str) -> dict[int, float]:
    return {size: p50 * (2 if backend == "keras" else 1)
            for size, p50 in NATIVE_MS[spec].items()}


def planned_job(spec: str, backend: str, seed: int) -> dict:
    return {"job_id": f"{spec}--{backend}--seed{seed}", "spec": spec, "base_spec": spec,
            "overrides": {}, "study": "mlp_depth_bn_dropout", "backend": backend, "seed": seed,
            **RUN_OPTIONS}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("study") / "run"
    for (spec, backend), offsets in OFFSETS.items():
        for seed, offset in enumerate(offsets):
            write_study_job(run, spec, backend, seed, PUBLISHED[spec] + offset,
                            EPOCH_S[(spec, backend)],
                            {"onnxruntime": ORT_MS[spec], "native": native_ms(spec, backend)},
                            epochs=load_spec(spec).train.epochs,
                            busy_epochs=(spec, backend) == ("mlp2_bn", "keras"),
                            confusion=LEARNED)
    write_study_job(run, "lenet5_dropout", "torch", 0, 0.92, 5.0,
                    {"onnxruntime": ORT_MS["mlp2"], "native": NATIVE_MS["mlp2"]},
                    epochs=load_spec("lenet5_dropout").train.epochs, confusion=ONE_CLASS)
    # run.json: the last command planned mlp3 in PyTorch only, seeds 0-2; mlp5 not at all
    write_json_atomic(run / "run.json", {
        "schema_version": 1, "kind": "run", "created_utc": "2024-01-01T00:00:00Z",
        "config": {"specs": ["mlp*"], "backends": ["keras", "torch"], "seeds": [0],
                   "sets": [], **RUN_OPTIONS},
        "jobs": [planned_job("mlp3", "torch", seed) for seed in range(3)]})
    return write_report(run)


def table(report: Path, name: str) -> pd.DataFrame:
    frame = pd.read_csv(report / "tables" / f"{name}.csv", keep_default_na=False,
                        na_values=[""])
    if "spec" in frame:
        frame["label"] = [row_label(s, "" if pd.isna(p) else p)
                          for s, p in zip(frame["spec"], frame["point"], strict=True)]
    return frame


def markdown(report: Path) -> str:
    return (report / "report.md").read_text()


def study_row(report: Path, spec: str, study: str = "mlp_depth_bn_dropout") -> pd.Series:
    return table(report, f"study_{study}").set_index("spec").loc[spec]


@pytest.mark.parametrize(("delta", "std", "expected"), [
    (0.5, math.nan, REPRODUCED), (-0.5, math.nan, REPRODUCED),
    (0.5 + 1e-6, math.nan, DIFFERS), (-0.501, math.nan, DIFFERS),
    (0.4999999999999, 0.0, REPRODUCED), (0.80, 0.4, REPRODUCED), (0.81, 0.4, DIFFERS),
    (0.5, 0.2, REPRODUCED), (0.6, 0.2, DIFFERS),  # 2 x 0.2 < 0.5: the floor decides
    (math.nan, 0.1, "")])
def test_verdict_at_its_boundaries(delta: float, std: float, expected: str) -> None:
    assert verdict(delta, std) == expected
    assert verdict(delta, std, AGREE) == (AGREE if expected == REPRODUCED else expected)


def test_every_figure_in_findings_equals_the_table_it_cites(report: Path) -> None:
    figures = table(report, "findings")
    text = markdown(report)
    assert len(figures) > 20 and set(figures["statistic"]) >= {"mean", "median", "min", "max",
                                                               "count", "rows", "value"}
    for _, figure in figures.iterrows():
        cited = table(report, figure["table"])
        labels = figure["rows"].split("; ")
        rows = cited[cited["label"].isin(labels)]
        assert sorted(rows["label"]) == sorted(labels), figure["text"]
        values = rows[figure["column"]]
        if figure["statistic"] == "count":
            match = "" if pd.isna(figure["match"]) else figure["match"]
            expected = float((values.fillna("") == match).sum())
        elif figure["statistic"] == "rows":
            expected = float(len(rows))
        elif figure["statistic"] == "value":
            expected = float(values.iloc[0])
        else:
            expected = float(getattr(values, figure["statistic"])())
        assert figure["value"] == pytest.approx(expected), figure["text"]
        assert f"[{figure['text']}](#t-{figure['table']})" in text, figure["text"]
        assert f'<a id="t-{figure["table"]}"></a>' in text


def test_findings_answer_the_question_from_the_inputs(report: Path) -> None:
    findings = markdown(report).split("## Findings")[1].split("\n## ")[0]
    plain = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", findings)
    depth = plain.split("### Study: mlp_depth_bn_dropout")[1].split("###")[0]
    # Keras - PyTorch: mlp2 +1.001 pp, mlp2_bn +0.5 pp; largest seed std 0.4 pp
    assert "Keras − PyTorch: +0.75 pp on average (from +0.50 to +1.00 pp over 2 specs)" in depth
    assert "1 of 2 agree" in depth and "largest seed std is 0.40 pp" in depth
    assert "within the seed spread" in depth
    # the busy mlp2_bn epoch (ratio 3.0) is left out: mlp2's 2.00x alone
    assert "a steady Keras epoch takes 2.00× the time of a PyTorch one" in depth
    # single epochs per job: a ratio, never a verdict (the protocol's job)
    assert "no verdict on which trains faster; 1 spec timed on a busy machine left out" in depth
    assert "PyTorch trains faster" not in depth
    # native / ORT: keras (12, 5) and (8, 8); torch (6, 2.5) and (4, 4): medians of two
    assert "over Keras 10.00× at batch 1, 6.50× at batch 32" in depth
    assert "over PyTorch 5.00× at batch 1, 3.25× at batch 32" in depth
    assert "mlp2: published 0.9746; Keras +0.50 pp (within ±0.5 pp), PyTorch -0.50 pp " \
           "(beyond ±0.5 pp); verdict: Keras reproduced, PyTorch differs." in depth
    assert "mlp2_bn: published 0.9778; Keras +0.70 pp (within ±0.8 pp), PyTorch +0.20 pp " \
           "(within ±0.5 pp); verdict: reproduced." in depth
    assert "Keras 2 of 2; PyTorch 1 of 2" in depth
    assert findings.index("### Study") < findings.index("### Reproduce every table")
    text = markdown(report)
    # the decision table comes first, then the findings, before any other table
    assert text.index("## Decision") < text.index("\n|") < text.index("## Findings")
    after = text.split("## Findings")[1]
    assert after.index("### Study") < after.index("\n|")
    html = (report / "report.html").read_text()
    assert html.index('id="t-decision"') < html.index('id="findings"')
    assert html.index('id="findings"') < html.index("<table", html.index('id="findings"'))
    assert '<a href="#t-study_mlp_depth_bn_dropout_speed">2.00×</a>' in html


def test_the_reproduction_table_holds_the_verdicts(report: Path) -> None:
    mlp2, mlp2_bn = study_row(report, "mlp2"), study_row(report, "mlp2_bn")
    assert (mlp2["verdict_keras"], mlp2["verdict_torch"]) == (REPRODUCED, DIFFERS)
    assert mlp2["delta_pp_published_keras"] == pytest.approx(0.5)
    assert (mlp2["verdict_frameworks"], mlp2_bn["verdict_frameworks"]) == (DIFFERS, AGREE)
    assert mlp2_bn["test_accuracy_std_keras"] == pytest.approx(0.004)
    assert mlp2_bn["tolerance_pp_keras"] == pytest.approx(0.8)
    assert mlp2_bn["verdict_keras"] == REPRODUCED  # 0.7 pp, within 2 x seed std
    assert mlp2_bn["seeds_keras"] == 3


def test_a_model_that_predicts_one_class_is_named_as_not_learned(report: Path) -> None:
    assert study_row(report, "lenet5_dropout", "lenet5_bn_dropout")["seeds_one_class_torch"] == 1
    assert study_row(report, "mlp2")["seeds_one_class_keras"] == 0
    findings = markdown(report).split("## Findings")[1].split("\n## ")[0]
    plain = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", findings)
    lenet = plain.split("### Study: lenet5_bn_dropout")[1].split("###")[0]
    assert ("Did not learn (every test image given the same class, so the accuracy is that "
            "class's share of the test set): lenet5_dropout (PyTorch 1 of 1 seed).") in lenet
    assert "Did not learn" not in plain.split("### Study: mlp_depth_bn_dropout")[1]
    studies = markdown(report).split("\n## Study: ")
    lenet_section = next(s for s in studies if s.startswith("lenet5_bn_dropout"))
    depth_section = next(s for s in studies if s.startswith("mlp_depth_bn_dropout"))
    assert "seeds predicting one class" in lenet_section
    assert "seeds predicting one class" not in depth_section


def test_not_run_rows_carry_the_command_that_runs_them(report: Path) -> None:
    run = report.parent
    mlp3, mlp5 = study_row(report, "mlp3"), study_row(report, "mlp5")
    assert mlp3["not_run"] == mlp5["not_run"] == "keras, torch"
    assert pd.isna(mlp3["test_accuracy_mean_keras"]) and pd.isna(mlp3["verdict_keras"])
    # run.json's settings, less the options' defaults (device cpu, opset 18, ...), data_dir
    # (a machine's path) and latency_warmup (no option sets it)
    options = f"--batch-sizes 1,32 --epochs 3 --limit 500 --limit-test 200 --threads 2 --out {run}"
    # mlp3: torch was planned with seeds 0-2, keras not (the command's seeds, 0)
    assert mlp3["command"] == (
        f"harness run --specs mlp3 --backends keras --seeds 0 {options}; "
        f"harness run --specs mlp3 --backends torch --seeds 0,1,2 {options}")
    assert mlp5["command"] == f"harness run --specs mlp5 --backends keras,torch --seeds 0 " \
                              f"{options}"
    for command in (*mlp3["command"].split("; "), mlp5["command"]):
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.specs in (["mlp3"], ["mlp5"]) and args.epochs == 3
    line = next(row for row in markdown(report).splitlines() if row.startswith("| mlp5 |"))
    assert "| keras, torch |" in line and mlp5["command"] in line
    assert "| not run | command |" in markdown(report)


def test_ambiguous_published_figures_are_shown_as_such(report: Path) -> None:
    row = study_row(report, "lenet5_dropout", "lenet5_bn_dropout")
    # its one seed predicted one class: no reproduced/differs verdict, whatever the spread
    assert row["verdict_torch"] == "did not learn (1 of 1 seeds)"
    assert row["published_test_accuracy"] == pytest.approx(0.9294)
    assert "misattributes" in row["published_ambiguity"]
    text = markdown(report)
    study = text.split("\n## Study: lenet5_bn_dropout")[1].splitlines()
    line = next(r for r in study if r.startswith("| lenet5_dropout |"))
    assert "| 0.9294 (ambiguous) | 0.2486 (ambiguous) |" in line
    # the study's other specs were never asked for: no rows, no commands
    assert not any(r.startswith("| lenet5_bn_hidden |") for r in study)
    assert "published [0.9294 (ambiguous)]" in text
    assert "Published figures marked ambiguous" in text and "lenet5_dropout:" in text


def test_reproduce_commands_and_machine_facts(report: Path) -> None:
    frame = table(report, "overview")
    overview = pd.Series(frame["value"].tolist(), index=frame.iloc[:, 0])
    assert overview["CPU"] == "Test CPU 3000 (2 logical cores)"
    assert "asked: --threads 2" in overview["threads"]
    assert "torch: 2 intra-op, 1 inter-op" in overview["threads"]
    assert "in 13 jobs" in overview["wall time"]
    commands = markdown(report).split("### Reproduce every table")[1].split("\n## ")[0]
    assert "--specs mlp2,mlp2_bn --backends keras,torch --seeds 0,1,2" in commands
    assert "--specs lenet5_dropout --backends torch --seeds 0" in commands
    assert f"`harness report {report.parent}`" in commands
    jobs = table(report, "jobs")
    assert len(jobs) == 13 and jobs["job_seconds"].notna().all()


def test_whole_studies_are_named_as_the_run_command_takes_them() -> None:
    studies = {"small": ("mlp2", "mlp3"), "other": ("x", "y")}
    assert compact_specs(["mlp3", "x", "mlp2"], studies) == ["study:small", "x"]
    assert compact_specs(["mlp2"], studies) == ["mlp2"]
    for study, names in zoo_studies().items():  # what `harness run` reads back
        assert sorted(resolve_specs([f"study:{study}"])) == sorted(names)


def test_when_every_epoch_ratio_is_busy_it_is_shown_marked(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for backend, epoch_s in (("keras", 3.0), ("torch", 1.0)):
        write_study_job(run, "mlp2", backend, 0, 0.97, epoch_s,
                        {"onnxruntime": ORT_MS["mlp2"], "native": NATIVE_MS["mlp2"]},
                        busy_epochs=backend == "keras")
    text = markdown(write_report(run))
    assert ("a steady Keras epoch takes [3.00× †](#t-study_mlp_depth_bn_dropout_speed) the "
            "time of a PyTorch one") in text
    assert "every one timed on a busy machine (†)" in text


def test_published_figures_come_from_the_zoo_when_the_job_ran_the_same_model(
        tmp_path: Path) -> None:
    from harness.records import folders
    from harness.report import load_run
    from harness.training import SPEC_FILE

    run = tmp_path / "run"
    zoo_text = (Path(__file__).resolve().parents[2] / "models" / "mlp2.yaml").read_text()
    stale = re.sub(r"  published_test_\w+: .*\n", "", zoo_text)  # written before the figures
    for backend, same_model in (("torch", True), ("keras", False)):
        write_study_job(run, "mlp2", backend, 0, 0.97, 1.0,
                        {"onnxruntime": ORT_MS["mlp2"], "native": NATIVE_MS["mlp2"]})
        folder = folders.job_dir(run, f"mlp2-{backend}-seed0")
        (folder / SPEC_FILE).write_text(stale if same_model else stale.replace(
            "  study:", "  published_test_accuracy: 0.5\n  study:"))
        if not same_model:  # the job's spec hash is the zoo spec's (fakes.job_record)
            job = json.loads((folder / folders.JOB_FILE).read_text())
            job["config"]["spec_hash"] = "another"
            (folder / folders.JOB_FILE).write_text(json.dumps(job))
    published = load_run(run).jobs.set_index("backend")["published_test_accuracy"]
    assert published["torch"] == PUBLISHED["mlp2"]  # same model: the zoo's current figure
    assert published["keras"] == 0.5  # another model of that name: its own spec's


def test_a_short_run_is_not_held_against_the_published_figure(tmp_path: Path) -> None:
    """Fewer epochs or images than the notebook: "not comparable", naming what differs; the
    frameworks are still compared; the study's other specs are not listed as "not run"."""
    run = tmp_path / "run"
    for backend, offset in (("keras", -0.29), ("torch", -0.28)):
        write_study_job(run, "mlp2", backend, 0, PUBLISHED["mlp2"] + offset, 1.0,
                        {"onnxruntime": ORT_MS["mlp2"], "native": NATIVE_MS["mlp2"]},
                        epochs=1)
    write_json_atomic(run / "run.json", {
        "schema_version": 1, "kind": "run", "created_utc": "2024-01-01T00:00:00Z",
        "config": {"specs": ["mlp2"], "backends": ["keras", "torch"], "seeds": [0],
                   "sets": [], **RUN_OPTIONS},
        "jobs": [planned_job("mlp2", backend, 0) for backend in ("keras", "torch")]})
    frame = table(write_report(run), "study_mlp_depth_bn_dropout").set_index("spec")
    assert list(frame.index) == ["mlp2"]
    row = frame.loc["mlp2"]
    assert row["verdict_keras"] == row["verdict_torch"] == "not comparable (1 of 15 epochs)"
    assert pd.isna(row["delta_pp_published_keras"])
    assert row["verdict_frameworks"] == DIFFERS and pd.isna(row["not_run"])
