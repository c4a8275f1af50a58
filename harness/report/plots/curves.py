"""Learning curves: per spec, accuracy beside loss (log scale), train solid and validation
dashed, every backend on the same pair of panels; seeds averaged, with a band from the lowest
to the highest seed where they differ."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from harness.report.plots.base import (
    MAX_MARKED_EPOCHS,
    STYLE,
    Key,
    backend_color,
    grid,
    label,
    legend,
    plain_log,
    to_png,
)

METRICS = (("accuracy", "train_accuracy", "val_accuracy"), ("loss", "train_loss", "val_loss"))


def _curve(ax: Any, curve: pd.DataFrame, column: str, color: str, style: str) -> None:
    """Mean over seeds, and a band from the lowest to the highest seed when they differ."""
    if column not in curve or not curve[(column, "mean")].notna().any():
        return
    epochs = curve.index.get_level_values("epoch")
    marker = "." if len(epochs) <= MAX_MARKED_EPOCHS else None
    ax.plot(epochs, curve[(column, "mean")], color=color, ls=style, marker=marker, lw=1.1)
    if (curve[(column, "max")] > curve[(column, "min")]).any():
        ax.fill_between(epochs, curve[(column, "min")], curve[(column, "max")], color=color,
                        alpha=0.2, lw=0)


def _spec_panels(axes: tuple[Any, Any], rows: pd.DataFrame, key: Key) -> None:
    """The accuracy panel and the loss panel of one spec."""
    columns = [c for _, train, val in METRICS for c in (train, val) if c in rows]
    curves = rows.groupby(["backend", "epoch"])[columns].agg(["mean", "min", "max"])
    for ax, (name, train, val) in zip(axes, METRICS, strict=True):
        for backend, curve in curves.groupby(level="backend"):
            color = backend_color(str(backend))
            _curve(ax, curve, train, color, "-")
            _curve(ax, curve, val, color, "--")
        ax.set_title(f"{label(key)}: {name}")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("accuracy")
    losses = pd.to_numeric(rows[[c for c in ("train_loss", "val_loss") if c in rows]]
                           .stack(), errors="coerce").dropna()
    if (losses > 0).any():
        axes[1].set_yscale("log")
        plain_log(axes[1].yaxis, losses)
    axes[1].set_ylabel("loss (log scale)")


def loss_curves(history: pd.DataFrame, keys: Sequence[Key]) -> bytes | None:
    """Per spec two panels side by side: accuracy, and loss on a log scale; train (solid)
    and validation (dashed), every backend in its colour."""
    if history.empty or not keys:
        return None
    with plt.rc_context(STYLE):
        fig, axes = grid(2 * len(keys))
        backends = sorted(history["backend"].unique())
        for index, key in enumerate(keys):
            rows = history[(history["spec"] == key[0]) & (history["point"] == key[1])]
            _spec_panels((axes[2 * index], axes[2 * index + 1]), rows, key)
        legend(fig, [Line2D([], [], color=backend_color(b), label=b) for b in backends]
                + [Line2D([], [], color="gray", label="train"),
                   Line2D([], [], color="gray", ls="--", label="validation")])
        return to_png(fig)


learning_curves = loss_curves  # the same figure under the name of what it now shows
