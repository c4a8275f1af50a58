"""The report's plots: matplotlib (Agg), returned as small palette PNGs ready to embed.

Small multiples keep the page short: one figure per study holds one panel per spec. Seeds are
averaged (curves) or summed (confusion counts); weight distributions show the lowest seed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is written headless, e.g. on CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullLocator  # noqa: E402
from PIL import Image  # noqa: E402

from harness.spec.initializers import load_weights  # noqa: E402

DPI = 100
PANEL = (3.0, 2.3)  # inches per small-multiple panel
BACKEND_COLORS = {"keras": "#d62728", "keras-jax": "#2ca02c", "keras-torch": "#9467bd",
                  "torch": "#1f77b4"}
STYLE = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 8,
         "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.spines.top": False,
         "axes.spines.right": False, "figure.facecolor": "white"}
MAX_NAMED_POINTS = 16  # above this, only the accuracy/latency Pareto front is labelled
MAX_MARKED_EPOCHS = 20  # longer curves without point markers: lighter and easier to read
MAX_WEIGHT_SAMPLES = 20_000  # per kernel: quartiles need no more, and the plot stays fast

Key = tuple[str, str]  # (spec, point)


def label(key: Key) -> str:
    spec, point = key
    return f"{spec} [{point}]" if point else spec


def backend_color(backend: str) -> str:
    others = plt.get_cmap("tab10").colors[2:]
    return BACKEND_COLORS.get(backend) or matplotlib.colors.to_hex(
        others[sum(map(ord, backend)) % len(others)])


def to_png(fig: Figure) -> bytes:
    """Render, then quantise to a 256-colour palette: flat charts lose nothing visible and the
    file shrinks several times, which keeps the self-contained HTML small."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").quantize(colors=256)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _grid(count: int, ncols: int = 4, panel: tuple[float, float] = PANEL
          ) -> tuple[Figure, list[Any]]:
    """`count` panels in rows of `ncols`. Fixed spacing rather than tight_layout: with dozens
    of panels the layout solver costs more than drawing them."""
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    width, height = panel[0] * ncols, panel[1] * nrows
    # margins in inches, not fractions: a tall figure would otherwise get a tall blank band
    margins = {"left": 0.6 / width, "right": 1 - 0.15 / width, "top": 1 - 0.45 / height,
               "bottom": 0.55 / height, "wspace": 0.35, "hspace": 0.6}
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(width, height),
                             gridspec_kw=margins)
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _plain_log(axis: Any, values: Iterable[float]) -> None:
    """Log-axis labels as 0.05, 0.1, 0.2 rather than 5x10^-2. A short range has too few major
    ticks to read: under two decades the 2s and 5s are labelled too, under one every tick."""
    values = [v for v in values if v > 0]
    span = math.log10(max(values) / min(values)) if values else 9.0

    def minor(value: float, _: int) -> str:
        mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
        shown = span < 1 or (span < 2 and mantissa in (2, 5))
        return f"{value:g}" if shown else ""

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    if span < 2:
        axis.set_minor_formatter(FuncFormatter(minor))
    else:  # unlabelled minor ticks only cost drawing time
        axis.set_minor_locator(NullLocator())


def _legend(fig: Figure, handles: list[Line2D]) -> None:
    per_row = max(2, int(fig.get_figwidth() / 1.9))  # a legend no wider than the panels
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=min(len(handles), per_row), frameon=False)


def _loss_curve(ax: Any, curve: pd.DataFrame, column: str, color: str, style: str) -> None:
    """Mean over seeds, and a band from the lowest to the highest seed when they differ."""
    epochs = curve.index.get_level_values("epoch")
    marker = "." if len(epochs) <= MAX_MARKED_EPOCHS else None
    ax.plot(epochs, curve[(column, "mean")], color=color, ls=style, marker=marker, lw=1.1)
    if (curve[(column, "max")] > curve[(column, "min")]).any():
        ax.fill_between(epochs, curve[(column, "min")], curve[(column, "max")], color=color,
                        alpha=0.2, lw=0)


def loss_curves(history: pd.DataFrame, keys: Sequence[Key]) -> bytes | None:
    """Train (solid) and validation (dashed) loss per epoch, every backend on one panel."""
    if history.empty or not keys:
        return None
    with plt.rc_context(STYLE):
        fig, axes = _grid(len(keys))
        backends = sorted(history["backend"].unique())
        for ax, key in zip(axes, keys, strict=True):
            rows = history[(history["spec"] == key[0]) & (history["point"] == key[1])]
            curves = rows.groupby(["backend", "epoch"])[["train_loss", "val_loss"]].agg(
                ["mean", "min", "max"])
            for backend, curve in curves.groupby(level="backend"):
                color = backend_color(backend)
                _loss_curve(ax, curve, "train_loss", color, "-")
                if curve[("val_loss", "mean")].notna().any():
                    _loss_curve(ax, curve, "val_loss", color, "--")
            ax.set_title(label(key))
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss")
            ax.xaxis.get_major_locator().set_params(integer=True)
        _legend(fig, [Line2D([], [], color=backend_color(b), label=b) for b in backends]
                + [Line2D([], [], color="gray", label="train"),
                   Line2D([], [], color="gray", ls="--", label="validation")])
        return to_png(fig)


def accuracy_vs_latency(jobs: pd.DataFrame, latency: pd.DataFrame,
                        batch_size: int | None) -> bytes | None:
    """Test accuracy against ONNX Runtime CPU p50 (session_run) at one batch size."""
    ort = latency[(latency["source"] == "run") & (latency["runtime"] == "onnxruntime")
                  & (latency["provider"] == "cpu") & (latency["mode"] == "session_run")
                  & (latency["batch_size"] == batch_size)]
    accuracy = jobs.groupby(["spec", "point", "backend"])["test_accuracy"].mean()
    points = ort.merge(accuracy.reset_index(), on=["spec", "point", "backend"]).dropna(
        subset=["p50_ms", "test_accuracy"])
    if points.empty:
        return None
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        for backend, group in points.groupby("backend"):
            ax.scatter(group["p50_ms"], group["test_accuracy"], s=18, label=backend,
                       color=backend_color(backend), alpha=0.85)
        named = points if len(points) <= MAX_NAMED_POINTS else pareto_front(points)
        for _, row in named.iterrows():
            ax.annotate(label((row["spec"], row["point"])),
                        (row["p50_ms"], row["test_accuracy"]), fontsize=6, alpha=0.8,
                        xytext=(3, 2), textcoords="offset points")
        ax.set_xscale("log")
        _plain_log(ax.xaxis, points["p50_ms"])
        ax.set_xlabel(f"ONNX Runtime CPU p50 latency, batch {batch_size} (ms, log scale)")
        ax.set_ylabel("test accuracy")
        ax.legend(frameon=False)
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
        fig, axes = _grid(len(keys))
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
            _plain_log(ax.yaxis, rows["p50_ms"])
            ax.set_title(label(key))
            ax.set_xlabel("batch size")
            ax.set_ylabel("p50 (ms)")
        _legend(fig, [Line2D([], [], color=colors[s], label=s) for s in series]
                + [Line2D([], [], color="gray", ls=styles[b], label=b) for b in backends])
        return to_png(fig)


def confusion_matrices(jobs: pd.DataFrame, confusion: dict[str, np.ndarray],
                       keys: Sequence[Key]) -> bytes | None:
    """Row-normalised confusion matrices (diagonal = per-class recall), per spec x backend."""
    panels = []
    for key in keys:
        rows = jobs[(jobs["spec"] == key[0]) & (jobs["point"] == key[1])]
        for backend, group in rows.groupby("backend"):
            found = [confusion[j] for j in group["job_id"] if j in confusion]
            if found:
                panels.append((key, backend, np.sum(found, axis=0)))
    if not panels:
        return None
    with plt.rc_context(STYLE):
        ncols = 6
        fig, axes = _grid(len(panels), ncols=ncols, panel=(1.9, 2.0))
        classes = range(panels[0][2].shape[0])
        for index, (ax, (key, backend, counts)) in enumerate(zip(axes, panels, strict=True)):
            totals = counts.sum(axis=1, keepdims=True)
            normalised = np.divide(counts, totals, out=np.zeros(counts.shape),
                                   where=totals > 0)
            ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"{label(key)}\n{backend}", fontsize=7)
            # class labels on the outer panels only: tick texts are most of the drawing time
            first_col, last_row = index % ncols == 0, index + ncols >= len(panels)
            ax.set_xticks(classes if last_row else [])
            ax.set_yticks(classes if first_col else [])
            ax.tick_params(length=0, labelsize=6)
            if last_row:
                ax.set_xlabel("predicted", fontsize=6)
            if first_col:
                ax.set_ylabel("true", fontsize=6)
        return to_png(fig)


def _kernels(path: str) -> list[tuple[int, np.ndarray]]:
    """(layer index, values) of every kernel in a canonical weights file, in layer order."""
    weights = load_weights(path)
    rng = np.random.default_rng(0)
    kernels = []
    for name, array in weights.items():
        index, _, kind = name.partition(".")
        if kind == "kernel":
            values = array.ravel()
            if values.size > MAX_WEIGHT_SAMPLES:
                values = rng.choice(values, MAX_WEIGHT_SAMPLES, replace=False)
            kernels.append((int(index), values))
    return sorted(kernels, key=lambda item: item[0])


def _first_seed_weights(jobs: pd.DataFrame, key: Key) -> dict[str, str]:
    rows = jobs[(jobs["spec"] == key[0]) & (jobs["point"] == key[1])
                & (jobs["weights_file"].fillna("") != "")].sort_values("seed")
    return rows.groupby("backend")["weights_file"].first().to_dict()


def weight_distributions(jobs: pd.DataFrame, keys: Iterable[Key]) -> bytes | None:
    """Final kernel values per weighted layer: one box per backend (5-95 percentile whiskers)."""
    panels = [(key, files) for key in keys if (files := _first_seed_weights(jobs, key))]
    if not panels:
        return None
    with plt.rc_context(STYLE):
        fig, axes = _grid(len(panels))
        backends = sorted({b for _, files in panels for b in files})
        width = 0.8 / len(backends)
        for ax, (key, files) in zip(axes, panels, strict=True):
            layers: list[int] = []
            for offset, backend in enumerate(backends):
                if backend not in files:
                    continue
                kernels = _kernels(files[backend])
                layers = [index for index, _ in kernels]
                positions = np.arange(len(kernels)) + (offset - (len(backends) - 1) / 2) * width
                parts = ax.boxplot([values for _, values in kernels], positions=positions,
                                   widths=width * 0.9, whis=(5, 95), showfliers=False,
                                   patch_artist=True, manage_ticks=False)
                for box in parts["boxes"]:
                    box.set(facecolor=backend_color(backend), alpha=0.6, linewidth=0.6)
                for median in parts["medians"]:
                    median.set(color="black", linewidth=0.8)
            ax.set_xticks(range(len(layers)), [str(i) for i in layers])
            ax.set_title(label(key))
            ax.set_xlabel("layer index (kernels)")
            ax.set_ylabel("weight")
        _legend(fig, [Line2D([], [], color=backend_color(b), lw=6, alpha=0.6, label=b)
                      for b in backends])
        return to_png(fig)
