"""The decision table and the speed figures with their uncertainty, on synthetic runs: hand-set
accuracies (no training) and synthetic protocol speed records (tests/report/speed_fakes.py)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pd = pytest.importorskip("pandas")  # the report extras; absent in a minimal install
pytest.importorskip("matplotlib")

from harness.measure.speed_load import SpeedData  # noqa: E402
from harness.measure.speed_records import Window  # noqa: E402
from harness.report import write_report  # noqa: E402
from harness.report.decision import ALL_STUDIES, COLUMNS  # noqa: E402
from harness.report.method import repeat_text  # noqa: E402
from harness.report.speed_records import spec_ratios  # noqa: E402

from .fakes import write_study_job  # noqa: E402
from .speed_fakes import comparison, spec_speed, write_speed  # noqa: E402

DEPTH, OPTIMIZER, LENET = "mlp_depth_bn_dropout", "mlp_activation_optimizer", "lenet5_bn_dropout"
GS, MLP512 = "gs_mlp512_128_relu_adam", "mlp512_128_relu_adam"
LEARNED = [[5 if label == predicted else 1 for predicted in range(3)] for label in range(3)]
ONE_CLASS = [[0, 4, 0], [0, 7, 0], [0, 5, 0]]
P50 = {"onnxruntime": {1: 0.05, 32: 0.4}, "native": {1: 0.3, 32: 1.0}}
# (spec, backend) -> accuracy per seed: mlp2 agrees (3 seeds), mlp2_bn differs by 1 pp, the
# aliases agree, lenet5_dropout predicts one class in both (equal accuracies: never "agree")
ACCURACY = {("mlp2", "keras"): (0.975, 0.977, 0.976), ("mlp2", "torch"): (0.976, 0.975, 0.977),
            ("mlp2_bn", "keras"): (0.980,), ("mlp2_bn", "torch"): (0.970,),
            (GS, "keras"): (0.981,), (GS, "torch"): (0.980,),
            (MLP512, "keras"): (0.981,), (MLP512, "torch"): (0.980,),
            ("lenet5_dropout", "keras"): (0.1135,), ("lenet5_dropout", "torch"): (0.1135,)}
EPOCH_S = {"keras": 1.3, "torch": 1.0}


def write_jobs(run: Path) -> None:
    for (spec, backend), accuracies in ACCURACY.items():
        for seed, accuracy in enumerate(accuracies):
            write_study_job(run, spec, backend, seed, accuracy, EPOCH_S[backend], P50,
                            confusion=ONE_CLASS if spec == "lenet5_dropout" else LEARNED)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("decision") / "run"
    write_jobs(run)
    for seed, spec in enumerate(("mlp2", "mlp2_bn")):
        write_speed(run, spec_speed(spec, training=1.3, native=1.0, ort=2.0, seed=seed))
    # the same model twice: timed 1.3x and 0.8x; counted once, as GS (first by name)
    write_speed(run, spec_speed(GS, training=1.3, native=1.0, ort=2.0, seed=5,
                                aliases=(MLP512,)))
    write_speed(run, spec_speed(MLP512, training=0.8, native=1.0, ort=2.0, seed=6,
                                aliases=(GS,)))
    repeat = spec_speed("mlp2", training=1.3, native=1.0, ort=2.0, seed=9, step_s=0.0104)
    write_speed(run, repeat, repeat=True)
    return write_report(run)


@pytest.fixture(scope="module")
def untimed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("untimed") / "run"
    for backend in ("keras", "torch"):
        write_study_job(run, "mlp2", backend, 0, 0.97, EPOCH_S[backend], P50, confusion=LEARNED)
    return write_report(run)


def decision(report: Path) -> pd.DataFrame:
    return pd.read_csv(report / "tables" / "decision.csv", keep_default_na=False,
                       na_values=[""])


def row(frame: pd.DataFrame, study: str, starts: str) -> pd.Series:
    rows = frame[(frame["study"] == study) & frame["comparison"].str.startswith(starts)]
    assert len(rows) == 1, (study, starts, frame[frame["study"] == study]["comparison"].tolist())
    return rows.iloc[0]


def plain(markdown: str) -> str:
    return re.sub(r"\[(.*?)\]\(#[^)]*\)", r"\1", markdown)  # link text may hold [...]


def test_decision_csv_has_its_columns_and_a_group_per_study(report: Path) -> None:
    frame = decision(report)
    assert list(frame.columns) == COLUMNS
    assert {DEPTH, OPTIMIZER, LENET, ALL_STUDIES} <= set(frame["study"])
    everything = frame[frame["study"] == ALL_STUDIES]
    speed = everything[everything["ci_low"].notna()]
    assert len(speed) == 7  # training; native at 1 and 32; ORT over each framework at 1, 32
    assert (speed["n"] == 3).all()  # mlp2, mlp2_bn and the aliases once
    keras = "Keras 3 on TensorFlow, graph mode, XLA off"
    assert row(frame, ALL_STUDIES, "training step time")["comparison"] == (
        f"training step time, {keras} ÷ PyTorch 2, eager mode")
    accuracy = everything[everything["comparison"].str.startswith("test accuracy")]
    assert accuracy["ci_low"].isna().all() and accuracy["ci_high"].isna().all()
    text = (report / "report.md").read_text()
    assert text.index("## Decision") < text.index("## Findings") < text.index("## Overview")


def test_a_clear_ratio_with_tight_windows_is_slower(report: Path) -> None:
    training = row(decision(report), ALL_STUDIES, "training step time")
    assert training["verdict"] == "slower"
    assert 1.25 < training["estimate"] < 1.35 and 1 < training["ci_low"] < training["ci_high"]


def test_a_like_for_like_ratio_is_within_noise_and_ort_is_faster(report: Path) -> None:
    frame = decision(report)
    for batch in (1, 32):
        native = row(frame, ALL_STUDIES, f"native inference time, batch {batch}")
        assert native["verdict"] == "within noise", native
        for framework in ("Keras 3 on TensorFlow, graph mode, XLA off", "PyTorch 2, eager mode"):
            ort = row(frame, ALL_STUDIES, f"ONNX Runtime speed-up over {framework}, batch {batch}")
            assert ort["verdict"] == "faster" and ort["estimate"] == pytest.approx(2, rel=0.05)


def test_aliases_are_counted_once(report: Path) -> None:
    frame = decision(report)
    training = row(frame, OPTIMIZER, "training step time")
    assert training["n"] == 1 and training["estimate"] == pytest.approx(1.3, rel=0.03)
    agree = row(frame, OPTIMIZER, "test accuracy, Keras 3 on TensorFlow, graph mode, XLA off "
                                  "− PyTorch 2, eager mode: agree")
    assert agree["n"] == 1 and agree["verdict"] == "1 of 1 agree"
    assert row(frame, OPTIMIZER, "aliases")["verdict"] == f"{MLP512} = {GS}"
    findings = plain((report / "report.md").read_text().split("## Findings")[1])
    assert f"counted once: {MLP512} = {GS}." in findings
    table = pd.read_csv(report / "tables" / f"study_{OPTIMIZER}_speed.csv").set_index("spec")
    assert table.loc[MLP512, "alias_of"] == GS and pd.isna(table.loc[GS, "alias_of"])


def test_a_model_that_did_not_learn_is_listed_apart_never_agreeing(report: Path) -> None:
    frame = decision(report)
    lenet = frame[frame["study"] == LENET]
    assert not lenet["comparison"].str.contains("agree").any()
    assert row(frame, LENET, "speed")["verdict"].startswith("not timed with the protocol")
    findings = plain((report / "report.md").read_text().split("## Findings")[1])
    lenet_findings = findings.split(f"### Study: {LENET}")[1].split("###")[0]
    assert "agree" not in lenet_findings and "Did not learn" in lenet_findings
    apart = row(frame, LENET, "did not learn")
    assert apart["n"] == 1 and apart["verdict"].startswith("lenet5_dropout (keras 1 of 1")
    agree = row(frame, ALL_STUDIES, "test accuracy, Keras 3 on TensorFlow, graph mode, XLA "
                                    "off − PyTorch 2, eager mode: agree")
    assert agree["n"] == 3 and agree["verdict"] == "2 of 3 agree"  # mlp2_bn differs
    noise = row(frame, DEPTH, "seed noise")
    assert noise["n"] == 1 and noise["estimate"] == pytest.approx(0.1)


def test_every_speed_finding_carries_its_interval_and_verdict(report: Path) -> None:
    text = (report / "report.md").read_text()
    findings = plain(text.split("## Findings")[1].split("\n## ")[0])
    depth = findings.split(f"### Study: {DEPTH}")[1].split("###")[0]
    assert re.search(r"Training step time \(protocol.*: 1\.\d\d× \[1\.\d\d–1\.\d\d\] "
                     r"\(geometric mean over 2 spec\(s\), 95 % interval; training A/A noise "
                     r"floor ±\d+\.\d %\): verdict slower \(Keras 3 on TensorFlow, graph mode, XLA "
                     r"off takes longer\); per spec: 2 slower\.", depth), depth
    assert "batch 1: 1.0" in depth and "verdict within noise" in depth
    assert "verdict faster (ONNX Runtime takes less time)" in depth
    assert re.search(r"over Keras 3 .* at batch 32 2\.\d\d× \[", depth)
    assert "steady Keras epoch takes" not in findings  # no bare single-timing ratio
    figures = pd.read_csv(report / "tables" / "findings.csv")
    cited = figures[figures["table"] == "decision"]
    table = decision(report)
    labels = table["study"] + " | " + table["comparison"]
    assert len(cited) >= 9
    for _, figure in cited.iterrows():
        value = table.loc[labels == figure["rows"], figure["column"]]
        assert float(value.iloc[0]) == pytest.approx(figure["value"]), figure["text"]


def test_study_speed_table_shows_estimates_intervals_and_the_cross_check(report: Path) -> None:
    table = pd.read_csv(report / "tables" / f"study_{DEPTH}_speed.csv").set_index("spec")
    mlp2 = table.loc["mlp2"]
    assert mlp2["epoch_estimate_s_torch"] == pytest.approx(1.0, rel=0.05)
    assert mlp2["epoch_estimate_s_keras_ci_low"] < mlp2["epoch_estimate_s_keras"]
    assert mlp2["run_over_estimate_keras"] == pytest.approx(1.0, rel=0.05)
    assert mlp2["protocol_step_ratio_keras_over_torch_verdict"] == "slower"
    section = (report / "report.md").read_text().split(f"## Study: {DEPTH}")[1]
    assert "steady epoch estimate [95 %] keras" in section
    assert re.search(r"\| 1\.\d{3} s \[1\.\d{3}–1\.\d{3}\] \|", section)


def test_overview_names_the_machine_its_noise_floor_and_drift(report: Path) -> None:
    frame = pd.read_csv(report / "tables" / "overview.csv", keep_default_na=False)
    overview = pd.Series(frame["value"].tolist(), index=frame.iloc[:, 0])
    # the fake run's jobs ran on another CPU than its protocol records: both are named
    assert overview["CPU"] == ("Test CPU 9000 (4 logical cores) for the protocol's timings; the "
                               "run's own jobs ran on Test CPU 3000 (accuracies do not depend "
                               "on it; its epoch times do)")
    text = (report / "report.md").read_text()
    assert "run ÷ estimate compares the two machines" in text
    assert overview["instruction sets"] == ("AVX2 yes, AVX-512 yes, AVX-512 VNNI no, "
                                            "AVX-512 BF16 no, AMX no")
    assert overview["RAM"] == "15.6 GiB" and overview["virtual machine"] == "yes"
    assert overview["cores used"].startswith("2 thread(s) per runtime (protocol); 2 usable of 4")
    assert re.fullmatch(r"training ±\d+\.\d %, inference ±\d+\.\d % .*",
                        overview["A/A noise floor"])
    drift = re.match(r"([+-]\d+\.\d) % to ([+-]\d+\.\d) % .*2 spec × framework",
                     overview["drift"])
    assert drift and 0 < float(drift[1]) <= float(drift[2]) < 10  # re-timed 4 % slower


def test_latency_section_states_the_protocol(report: Path) -> None:
    latency = (report / "report.md").read_text().split("## Latency")[1].split("\n## ")[0]
    assert "8 windows per configuration, 10 calls per window" in latency
    assert "ONNX Runtime graph optimisation: all" in latency
    assert "untimed warm-up calls: 10" in latency and "minimum latency window (s): 0.2" in latency
    assert "timed region (onnxruntime): session.run calls with a feed dict prepared once" in latency
    assert "timed region (training)" not in latency  # the latency section's own region only


def test_seeds_table_shows_one_timing_per_spec_not_a_spread(report: Path) -> None:
    seeds = pd.read_csv(report / "tables" / "seeds.csv")
    assert "steady_epoch_s" in seeds and "steady_epoch_s_std" not in seeds
    line = next(r for r in (report / "report.md").read_text().splitlines()
                if r.startswith("| mlp2 | keras | 3 |"))
    assert line.rstrip(" |").endswith("| 1.300") and line.count("±") == 2  # accuracy, loss


def test_a_run_without_speed_records_says_it_was_not_timed(untimed: Path) -> None:
    frame = decision(untimed)
    speed = frame[frame["comparison"].str.contains("time|speed-up")]
    assert len(speed) == 7 and speed["estimate"].isna().all() and speed["ci_low"].isna().all()
    assert speed["verdict"].str.startswith(
        "not timed with the protocol: run `harness retime").all()
    assert (speed["n"] == 0).all()
    text = (untimed / "report.md").read_text()
    assert "not timed with the protocol" in text.split("## Findings")[1].split("\n## ")[0]
    latency = text.split("## Latency")[1]
    assert "not repeated nor interleaved: no interval and no noise floor" in latency
    frame = pd.read_csv(untimed / "tables" / "overview.csv", keep_default_na=False)
    overview = pd.Series(frame["value"].tolist(), index=frame.iloc[:, 0])
    assert overview["A/A noise floor"].startswith("not measured")
    assert overview["drift"].startswith("not measured")


def test_paired_ratios_pair_adjacent_windows_whichever_ran_first() -> None:
    made = comparison("native", "keras", "torch", 2.0, 1.0, np.random.default_rng(0))
    assert np.allclose(spec_ratios(made), 2.0, rtol=0.05) and spec_ratios(made).size == 8
    swapped = [Window(label=w.label, seconds=w.seconds, units=w.units)
               for pair in zip(made.windows[1::2], made.windows[0::2], strict=True)
               for w in pair]  # each pair in the other order
    assert np.allclose(spec_ratios(made.model_copy(update={"windows": swapped})),
                       spec_ratios(made))


def test_an_alias_timed_once_is_counted_as_the_timed_spec(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for spec in (GS, MLP512):
        for backend in ("keras", "torch"):
            write_study_job(run, spec, backend, 0, ACCURACY[(spec, backend)][0],
                            EPOCH_S[backend], P50, confusion=LEARNED)
    # harness retime times one spec of the pair and names the other its alias
    write_speed(run, spec_speed(MLP512, training=1.3, native=1.0, ort=2.0, seed=1,
                                aliases=(GS,)))
    report = write_report(run)
    frame = decision(report)
    assert row(frame, OPTIMIZER, "aliases")["verdict"] == f"{GS} = {MLP512}"
    assert row(frame, OPTIMIZER, "training step time")["n"] == 1
    table = pd.read_csv(report / "tables" / f"study_{OPTIMIZER}_speed.csv").set_index("spec")
    assert table.loc[GS, "alias_of"] == MLP512 and pd.isna(table.loc[GS, "epoch_estimate_s_keras"])
    findings = plain((report / "report.md").read_text().split("## Findings")[1])
    assert f"counted once: {GS} = {MLP512}." in findings


def _repeat_run(training_later: float) -> SimpleNamespace:
    first = spec_speed("mlp2", training=1.3, native=1.0, ort=2.0, seed=1)
    later = spec_speed("mlp2", training=training_later, native=1.0, ort=2.0, seed=2,
                       started_utc="2024-01-01T00:45:00Z", finished_utc="2024-01-01T00:50:00Z")
    return SimpleNamespace(speed=SpeedData(specs={"mlp2": first}, repeat={"mlp2": later}))


def test_the_repeat_pass_says_whether_its_intervals_overlap_the_first() -> None:
    same = re.fullmatch(r"(\d+) of 7 ratio intervals of 1 spec\(s\) overlap between the first "
                        r"pass and the repeat, 35–35 min later", repeat_text(_repeat_run(1.3)))
    assert same and int(same[1]) >= 6
    # the negative control: training 1.3x then 1.6x cannot overlap
    slower = re.match(r"(\d+) of 7", repeat_text(_repeat_run(1.6)))
    assert slower and int(slower[1]) == int(same[1]) - 1
    assert repeat_text(SimpleNamespace(speed=SpeedData())).startswith("not measured")
