"""The report's plots read as the issue asks: accuracy-vs-latency joins each spec's backends and
keeps models that did not learn off the scale; accuracy beside loss (log); confusion matrices
with a colour bar, only for specs whose frameworks differ; ONNX Runtime speed-up with interval
bars from the speed records; print CSS that does not clip long tables.

The figures are caught before rendering (to_png patched) so their artists can be inspected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from matplotlib.collections import PathCollection  # noqa: E402

from harness.report import plots  # noqa: E402
from harness.report.plots import confusion as confusion_module  # noqa: E402
from harness.report.plots import curves, latency  # noqa: E402
from harness.report.render import CSS  # noqa: E402
from harness.report.reproduction import AGREE, DIFFERS  # noqa: E402

BACKENDS = ("keras", "torch")
ACCURACY = {"good": (0.98, 0.975), "also_good": (0.96, 0.962), "flat": (0.1135, 0.1135)}


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every figure a plot function renders, kept open instead of turned into a PNG."""
    caught: list[Any] = []

    def keep(fig: Any) -> bytes:
        caught.append(fig)
        return b"png"

    for module in (latency, curves, confusion_module):
        monkeypatch.setattr(module, "to_png", keep)
    return caught


def jobs() -> pd.DataFrame:
    rows = [{"job_id": f"{spec}-{b}", "spec": spec, "point": "", "backend": b, "seed": 0,
             "test_accuracy": accuracy[i], "predicted_classes": 1 if spec == "flat" else 10}
            for spec, accuracy in ACCURACY.items() for i, b in enumerate(BACKENDS)]
    return pd.DataFrame(rows)


def latency_rows() -> pd.DataFrame:
    rows = [{"source": "run", "runtime": "onnxruntime", "provider": "cpu",
             "mode": "session_run", "batch_size": 1, "spec": spec, "point": "", "backend": b,
             "p50_ms": 0.1 * (n + 1) * (1.5 if b == "keras" else 1.0)}
            for n, spec in enumerate(ACCURACY) for b in BACKENDS]
    return pd.DataFrame(rows)


def test_models_that_did_not_learn_are_kept_off_the_accuracy_scale(figures: list) -> None:
    assert plots.accuracy_vs_latency(jobs(), latency_rows(), 1) == b"png"
    (ax,) = figures[0].axes
    low, high = ax.get_ylim()
    assert low > 0.9 and high <= 1.0  # the scale is the learned models'
    on_scale = [c for c in ax.collections if c.get_gid() != latency.OFF_SCALE_GID]
    on_scale_y = np.concatenate([c.get_offsets()[:, 1] for c in on_scale])
    assert sorted(on_scale_y) == sorted([*ACCURACY["good"], *ACCURACY["also_good"]])
    edge = [c for c in ax.collections if c.get_gid() == latency.OFF_SCALE_GID]
    assert len(edge) == len(BACKENDS)
    bottom = ax.transAxes.transform((0, 0))[1]  # display coordinates of the bottom edge
    for collection in edge:
        shown = collection.get_offset_transform().transform(collection.get_offsets())
        assert np.allclose(shown[:, 1], bottom)
    assert any("did not learn" in t.get_text() and "flat" in t.get_text() for t in ax.texts)


def test_each_spec_s_backends_are_joined_by_a_line(figures: list) -> None:
    plots.accuracy_vs_latency(jobs(), latency_rows(), 1)
    (ax,) = figures[0].axes
    joins = [line for line in ax.lines if len(line.get_xdata()) == 2]
    assert len(joins) == len(ACCURACY)  # one per spec, the one that did not learn included
    good = latency_rows().query("spec == 'good'")
    assert any(sorted(line.get_xdata()) == sorted(good["p50_ms"]) for line in joins)


def test_did_not_learn_is_chance_accuracy_or_one_class() -> None:
    frame = pd.DataFrame({"test_accuracy": [0.98, 0.11, 0.5], "predicted_classes": [10, 3, 1]})
    assert plots.did_not_learn(frame).tolist() == [False, True, True]


def history() -> pd.DataFrame:
    rows = [{"spec": spec, "point": "", "backend": b, "seed": 0, "epoch": e,
             "train_loss": 2.0 / e, "val_loss": 2.2 / e, "train_accuracy": 1 - 0.5 / e,
             "val_accuracy": 1 - 0.4 / e}
            for spec in ("good", "flat") for b in BACKENDS for e in (1, 2, 3)]
    return pd.DataFrame(rows)


def test_accuracy_curves_sit_beside_loss_curves_on_a_log_scale(figures: list) -> None:
    plots.loss_curves(history(), [("good", ""), ("flat", "")])
    axes = [ax for ax in figures[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["good: accuracy", "good: loss", "flat: accuracy",
                                               "flat: loss"]
    assert [ax.get_yscale() for ax in axes] == ["linear", "log", "linear", "log"]
    accuracy = np.concatenate([line.get_ydata() for line in axes[0].lines])
    assert accuracy.max() < 1 and accuracy.min() >= 0.5  # accuracies, not losses
    assert len(axes[0].lines) == len(axes[1].lines) == 2 * len(BACKENDS)  # train, validation


def repro() -> pd.DataFrame:
    return pd.DataFrame({"spec": ["good", "also_good", "flat"], "point": ["", "", ""],
                         "verdict_frameworks": [AGREE, DIFFERS, AGREE],
                         "verdict_keras-jax_vs_torch": [DIFFERS, AGREE, ""],
                         "verdict_keras": [DIFFERS, DIFFERS, DIFFERS]})  # vs published: no


def test_confusion_matrices_are_for_the_specs_whose_frameworks_differ() -> None:
    assert plots.differing_keys(repro()) == [("good", ""), ("also_good", "")]
    assert plots.differing_keys(repro().drop(columns="verdict_keras-jax_vs_torch")) == [
        ("also_good", "")]
    assert plots.differing_keys(repro().iloc[0:0]) == []


def test_confusion_matrices_have_a_colour_bar(figures: list) -> None:
    matrices = {f"{spec}-{b}": np.eye(10, dtype=int) * 90 + 1 for spec in ACCURACY
                for b in BACKENDS}
    keys = plots.differing_keys(repro().drop(columns="verdict_keras-jax_vs_torch"))
    plots.confusion_matrices(jobs(), matrices, keys)
    axes = [ax for ax in figures[0].axes if ax.get_visible()]
    images = [ax for ax in axes if ax.images]
    assert [ax.get_title().split("\n")[0] for ax in images] == ["also_good"] * len(BACKENDS)
    bars = [ax for ax in axes if "share of the true class" in ax.get_ylabel()]
    assert len(bars) == 1
    assert plots.confusion_matrices(jobs(), matrices, []) is None  # no spec differs: no plot


def speed_data(busy: bool = False) -> Any:
    records = pytest.importorskip("harness.measure.speed_records")
    from harness.measure.speed_load import SpeedData

    def estimate(value: float) -> Any:
        return records.Estimate(estimate=value, ci_low=value * 0.9, ci_high=value * 1.2, n=7)

    def comparison(a: str, b: str, kind: str, size: int, ratio: float) -> Any:
        return records.Comparison(
            kind=kind, a=a, b=b, unit="call", batch_size=size, units_per_window={a: 10},
            warmup_seconds={a: 0.1}, windows=[], a_seconds_per_unit=estimate(1e-3),
            b_seconds_per_unit=estimate(1e-3), ratio=estimate(ratio), busy=busy, aa=a == b)

    specs = {spec: records.SpecSpeed(
        spec=spec, spec_hash="h", training_hash="t", backends={}, threads=1, steps_per_epoch=1,
        batch_size=128, epoch_estimate={}, protocol={}, environment={}, started_utc="",
        finished_utc="", comparisons=[
            comparison("keras", "onnxruntime", "onnxruntime", 1, 3.0 * n),
            comparison("torch", "onnxruntime", "onnxruntime", 1, 1.5 * n),
            comparison("torch", "onnxruntime", "onnxruntime", 32, 0.8 * n),
            comparison("torch", "torch", "onnxruntime", 1, 1.0),  # A/A: not a speed-up
            comparison("keras", "torch", "training", 128, 1.3)])
        for n, spec in enumerate(("good", "also_good"), start=1)}
    return SpeedData(specs=specs)


def test_speedup_rows_are_the_onnxruntime_comparisons_without_the_aa_ones() -> None:
    rows = plots.speedup_rows(speed_data())
    assert len(rows) == 6 and set(rows["backend"]) == set(BACKENDS)
    good = rows[(rows["spec"] == "good") & (rows["batch_size"] == 1)]
    assert sorted(good["speedup"]) == [1.5, 3.0]
    assert (rows["ci_low"] < rows["speedup"]).all() and (rows["speedup"] < rows["ci_high"]).all()
    assert plots.speedup_rows(None).empty


def test_speedup_is_drawn_with_interval_bars_per_batch_size(figures: list) -> None:
    assert plots.speedup_intervals(None) is None  # no records: keep latency_by_provider
    plots.speedup_intervals(speed_data(busy=True))
    axes = [ax for ax in figures[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["batch 1", "batch 32"]
    assert axes[0].get_xscale() == "log"
    bars = [c for c in axes[0].collections if not isinstance(c, PathCollection)]
    segments = np.concatenate([c.get_segments() for c in bars])
    assert sorted(round(s[1][0] - s[0][0], 6) for s in segments) == sorted(
        round(v * 0.3, 6) for v in (3.0, 1.5, 6.0, 3.0))  # ci_high - ci_low of each point
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["also_good", "good"]


def test_every_plot_is_a_small_png() -> None:
    png = plots.accuracy_vs_latency(jobs(), latency_rows(), 1)
    assert png is not None and png.startswith(b"\x89PNG") and len(png) < 60_000


def test_print_css_does_not_clip_long_tables() -> None:
    print_css = CSS[CSS.index("@media print"):]
    assert "overflow: visible" in print_css and "max-height: none" in print_css
    assert "table-header-group" in print_css  # headers repeat on every printed page
    assert "break-inside: avoid" in print_css
