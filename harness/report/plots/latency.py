"""Latency plots: accuracy against ONNX Runtime latency (each spec's backends joined, models
that did not learn kept off the accuracy scale), p50 by batch size, and ONNX Runtime's
speed-up over each framework with its 95 % interval (harness.speed records)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from harness.report.plots.base import (
    MAX_NAMED_POINTS,
    STYLE,
    backend_color,
    grid,
    label,
    legend,
    plain_log,
    to_png,
)

if TYPE_CHECKING:
    from harness.measure.speed_load import SpeedData

# A model at or below this test accuracy did not learn (ten classes: chance is about 0.1); so
# does one that gave every test image the same class (`predicted_classes` 1).
NOT_LEARNED_AT_OR_BELOW = 0.2
OFF_SCALE_MARKER = "v"  # drawn on the bottom edge: "below the axis"
OFF_SCALE_GID = "did-not-learn"  # names those markers in the figure (and its SVG, if any)


def did_not_learn(points: pd.DataFrame) -> pd.Series:
    """Per row: the model did not learn (accuracy near chance, or one class predicted)."""
    low = points["test_accuracy"] <= NOT_LEARNED_AT_OR_BELOW
    if "predicted_classes" in points:
        low |= points["predicted_classes"] == 1
    return low


def _accuracy_points(jobs: pd.DataFrame, latency: pd.DataFrame, batch_size: int | None
                     ) -> pd.DataFrame:
    ort = latency[(latency["source"] == "run") & (latency["runtime"] == "onnxruntime")
                  & (latency["provider"] == "cpu") & (latency["mode"] == "session_run")
                  & (latency["batch_size"] == batch_size)]
    columns = ["test_accuracy"] + (["predicted_classes"] if "predicted_classes" in jobs else [])
    grouped = jobs.groupby(["spec", "point", "backend"])[columns]
    accuracy = grouped.agg({c: ("mean" if c == "test_accuracy" else "max") for c in columns})
    points = ort.merge(accuracy.reset_index(), on=["spec", "point", "backend"]).dropna(
        subset=["p50_ms", "test_accuracy"])
    return points.assign(off_scale=did_not_learn(points))


def _join_backends(ax: Any, points: pd.DataFrame, transform: Any = None) -> None:
    """A thin grey line through each spec's points (one per backend)."""
    for _, group in points.groupby(["spec", "point"]):
        if len(group) > 1:
            group = group.sort_values("p50_ms")
            y = group["test_accuracy"] if transform is None else [0] * len(group)
            ax.plot(group["p50_ms"], y, color="0.6", lw=0.8, zorder=1, clip_on=False,
                    **({} if transform is None else {"transform": transform}))


def _off_scale(ax: Any, points: pd.DataFrame) -> None:
    """Models that did not learn: on the bottom edge, out of the accuracy scale, named."""
    if points.empty:
        return
    edge = ax.get_xaxis_transform()  # x in data, y in axes fraction: 0 is the bottom edge
    _join_backends(ax, points, transform=edge)
    for backend, group in points.groupby("backend"):
        ax.scatter(group["p50_ms"], [0] * len(group), transform=edge, clip_on=False, zorder=3,
                   s=22, marker=OFF_SCALE_MARKER, color=backend_color(str(backend)),
                   gid=OFF_SCALE_GID)
    names = "; ".join(
        label(key) + " " + ", ".join(f"{b} {a:.3f}" for b, a in zip(
            group["backend"], group["test_accuracy"], strict=True))
        for key, group in points.groupby(["spec", "point"]))
    ax.annotate(f"▼ did not learn (accuracy near chance, off the scale): {names}",
                (0.01, 0.02), xycoords="axes fraction", fontsize=6, color="0.3")


def accuracy_vs_latency(jobs: pd.DataFrame, latency: pd.DataFrame,
                        batch_size: int | None) -> bytes | None:
    """Test accuracy against ONNX Runtime CPU p50 (session_run) at one batch size; each
    spec's backends joined by a grey line; models that did not learn on the bottom edge."""
    points = _accuracy_points(jobs, latency, batch_size)
    if points.empty:
        return None
    learned, off = points[~points["off_scale"]], points[points["off_scale"]]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        _join_backends(ax, learned)
        for backend, group in learned.groupby("backend"):
            ax.scatter(group["p50_ms"], group["test_accuracy"], s=18, label=backend, zorder=2,
                       color=backend_color(str(backend)), alpha=0.85)
        named = learned if len(learned) <= MAX_NAMED_POINTS else pareto_front(learned)
        for _, row in named.iterrows():
            ax.annotate(label((row["spec"], row["point"])),
                        (row["p50_ms"], row["test_accuracy"]), fontsize=6, alpha=0.8,
                        xytext=(3, 2), textcoords="offset points")
        if not learned.empty:  # the scale the learned models need, a margin below for `off`
            low, high = learned["test_accuracy"].min(), learned["test_accuracy"].max()
            pad = max(0.005, (high - low) * 0.08)
            ax.set_ylim(low - pad * (3 if len(off) else 1), min(1.0, high + pad))
        _off_scale(ax, off)
        ax.set_xscale("log")
        plain_log(ax.xaxis, points["p50_ms"])
        ax.set_xlabel(f"ONNX Runtime CPU p50 latency, batch {batch_size} (ms, log scale)")
        ax.set_ylabel("test accuracy")
        if ax.get_legend_handles_labels()[0]:  # none when no model learned
            ax.legend(frameon=False, loc="lower right")
        return to_png(fig)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Points that no other point beats on both latency and accuracy (the ones worth naming
    when there are too many to label them all)."""
    ordered = points.sort_values(["p50_ms", "test_accuracy"], ascending=[True, False])
    best = ordered["test_accuracy"].cummax()
    return ordered[ordered["test_accuracy"] >= best]


def _series_name(row: pd.Series) -> str:
    name = f"{row['runtime']} {row['provider']}"
    if row["runtime"] != "native" and row["mode"]:
        name += f" {row['mode']}"
    return name + ("" if row["source"] == "run" else f" ({row['source']})")


def latency_by_provider(table: pd.DataFrame) -> bytes | None:
    """p50 against batch size (log-log), one panel per spec, one line per runtime/provider/mode
    (colour) and backend (line style)."""
    if table.empty:
        return None
    table = table.assign(series=table.apply(_series_name, axis=1))
    keys = sorted({(s, p) for s, p in zip(table["spec"], table["point"], strict=True)})
    series = sorted(table["series"].unique())
    colors = dict(zip(series, plt.get_cmap("tab10").colors * 3, strict=False))
    backends = sorted(table["backend"].unique())
    styles = dict(zip(backends, ["-", "--", ":", "-."] * 3, strict=False))
    with plt.rc_context(STYLE):
        fig, axes = grid(len(keys))
        for ax, key in zip(axes, keys, strict=True):
            rows = table[(table["spec"] == key[0]) & (table["point"] == key[1])]
            for (name, backend), line in rows.groupby(["series", "backend"]):
                line = line.sort_values("batch_size")
                ax.plot(line["batch_size"], line["p50_ms"], marker="o", ms=3, lw=1.2,
                        color=colors[name], ls=styles[backend])
            ax.set_xscale("log", base=2)
            sizes = sorted(rows["batch_size"].unique())
            ax.set_xticks(sizes, [str(int(size)) for size in sizes])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_yscale("log")
            plain_log(ax.yaxis, rows["p50_ms"])
            ax.set_title(label(key))
            ax.set_xlabel("batch size")
            ax.set_ylabel("p50 (ms)")
        legend(fig, [Line2D([], [], color=colors[s], label=s) for s in series]
                + [Line2D([], [], color="gray", ls=styles[b], label=b) for b in backends])
        return to_png(fig)


def speedup_rows(speed: SpeedData | None) -> pd.DataFrame:
    """One row per ONNX Runtime comparison of the speed records: spec, backend, batch_size,
    speedup (framework time / ONNX Runtime time: above 1, ONNX Runtime is faster), ci_low,
    ci_high, busy. A/A comparisons (noise-floor measurements) are left out."""
    rows = [{"spec": spec, "backend": c.a, "batch_size": c.batch_size,
             "speedup": c.ratio.estimate, "ci_low": c.ratio.ci_low, "ci_high": c.ratio.ci_high,
             "busy": c.busy}
            for spec, record in sorted((speed.specs if speed else {}).items())
            for c in record.comparisons if c.kind == "onnxruntime" and not c.aa]
    return pd.DataFrame(rows, columns=["spec", "backend", "batch_size", "speedup", "ci_low",
                                       "ci_high", "busy"])


def _speedup_panel(ax: Any, rows: pd.DataFrame, specs: list[str], backends: list[str],
                   names: bool) -> None:
    """One batch size: a row per spec, a point and its interval bar per backend."""
    offsets = {b: (i - (len(backends) - 1) / 2) * 0.3 for i, b in enumerate(backends)}
    for (backend, busy), group in rows.groupby(["backend", "busy"]):
        y = [specs.index(s) + offsets[str(backend)] for s in group["spec"]]
        errors = [group["speedup"] - group["ci_low"], group["ci_high"] - group["speedup"]]
        color = backend_color(str(backend))
        ax.errorbar(group["speedup"], y, xerr=errors, fmt="o", ms=3, lw=1, capsize=2,
                    color=color, mfc="white" if busy else color)  # hollow: a busy machine
    ax.grid(axis="y", color="0.92", lw=0.5)
    ax.axvline(1.0, color="0.4", lw=0.8, ls="--")
    ax.set_xscale("log")
    plain_log(ax.xaxis, [*rows["ci_low"], *rows["ci_high"], 1.0])
    ax.set_yticks(range(len(specs)), specs if names else [])
    ax.set_ylim(len(specs) - 0.5, -0.5)
    ax.set_xlabel("ONNX Runtime speed-up (framework time / ONNX Runtime time, log)")


def speedup_intervals(speed: SpeedData | None) -> bytes | None:
    """ONNX Runtime's CPU speed-up over each framework, per spec (rows) and batch size
    (panels): the median with its 95 % interval as a bar; right of the dashed line at 1, ONNX
    Runtime is faster. None when the run has no such records (keep latency_by_provider)."""
    rows = speedup_rows(speed)
    if rows.empty:
        return None
    specs = sorted(rows["spec"].unique())
    sizes = sorted(rows["batch_size"].unique())
    backends = sorted(rows["backend"].unique())
    with plt.rc_context(STYLE):
        fig, axes = grid(len(sizes), ncols=len(sizes), panel=(4.0, 1.4 + 0.22 * len(specs)))
        for index, (ax, size) in enumerate(zip(axes, sizes, strict=True)):
            _speedup_panel(ax, rows[rows["batch_size"] == size], specs, backends, index == 0)
            ax.set_title(f"batch {int(size)}")
        # room for the spec names left of the first panel (about 0.055 inch a character)
        names = 0.3 + 0.055 * max(map(len, specs))
        fig.set_figwidth(fig.get_figwidth() + names)
        fig.subplots_adjust(left=names / fig.get_figwidth())
        handles = [Line2D([], [], color=backend_color(b), marker="o", label=f"over {b}")
                   for b in backends]
        if rows["busy"].any():
            handles.append(Line2D([], [], color="gray", marker="o", mfc="white", ls="",
                                  label="timed on a busy machine"))
        legend(fig, handles)
        return to_png(fig)
