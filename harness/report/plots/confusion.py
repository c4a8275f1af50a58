"""Confusion matrices, for the specs whose frameworks differ in test accuracy (the
reproduction table's Keras-vs-PyTorch verdict): where they agree, the matrices show nothing a
reader needs. Row-normalised (the diagonal is each class's recall), on a square-root colour
scale so the off-diagonal errors show, with a colour bar."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import PowerNorm

from harness.report.plots.base import STYLE, Key, grid, label, to_png
from harness.report.reproduction import DIFFERS

NCOLS = 6
COLOR_BAR_INCHES = 0.9  # kept free on the right of the panels
NORM_GAMMA = 0.5  # square-root scale: errors of 1-5 % are visible beside a 0.99 diagonal


def differing_keys(repro: pd.DataFrame) -> list[Key]:
    """The rows (spec, point) of a reproduction table (harness.report.reproduction) where a
    Keras backend and PyTorch differ: `verdict_frameworks`, or a `verdict_<backend>_vs_torch`
    of another Keras backend, is "differs"."""
    columns = [c for c in repro.columns
               if c == "verdict_frameworks" or (c.startswith("verdict_") and "_vs_" in c)]
    if repro.empty or not columns:
        return []
    differs = (repro[columns] == DIFFERS).any(axis=1)
    return list(zip(repro.loc[differs, "spec"], repro.loc[differs, "point"], strict=True))


def _panels(jobs: pd.DataFrame, confusion: dict[str, np.ndarray], keys: Sequence[Key]
            ) -> list[tuple[str, np.ndarray]]:
    """(title, counts summed over seeds) for every key x backend with a matrix; the title
    names the spec, the backend and its mean test accuracy."""
    panels = []
    for key in keys:
        rows = jobs[(jobs["spec"] == key[0]) & (jobs["point"] == key[1])]
        for backend, group in rows.groupby("backend"):
            found = [confusion[j] for j in group["job_id"] if j in confusion]
            if found:
                accuracy = group["test_accuracy"].mean() if "test_accuracy" in group else None
                shown = "" if accuracy is None or pd.isna(accuracy) else f" {accuracy:.4f}"
                panels.append((f"{label(key)}\n{backend}{shown}", np.sum(found, axis=0)))
    return panels


def _matrix(ax: Any, counts: np.ndarray, title: str, outer: tuple[bool, bool]) -> Any:
    totals = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    image = ax.imshow(normalised, cmap="Blues", norm=PowerNorm(NORM_GAMMA, vmin=0, vmax=1))
    ax.set_title(title, fontsize=7)
    # class labels on the outer panels only: tick texts are most of the drawing time
    first_col, last_row = outer
    classes = range(counts.shape[0])
    ax.set_xticks(classes if last_row else [])
    ax.set_yticks(classes if first_col else [])
    ax.tick_params(length=0, labelsize=6)
    if last_row:
        ax.set_xlabel("predicted", fontsize=6)
    if first_col:
        ax.set_ylabel("true", fontsize=6)
    return image


def confusion_matrices(jobs: pd.DataFrame, confusion: dict[str, np.ndarray],
                       keys: Sequence[Key]) -> bytes | None:
    """Row-normalised confusion matrices (diagonal = per-class recall), per spec x backend,
    for the given keys (pass `differing_keys(repro)`), one colour bar for all panels."""
    panels = _panels(jobs, confusion, keys)
    if not panels:
        return None
    with plt.rc_context(STYLE):
        fig, axes = grid(len(panels), ncols=NCOLS, panel=(1.9, 2.0), right=COLOR_BAR_INCHES)
        ncols = min(NCOLS, len(panels))
        for index, (ax, (title, counts)) in enumerate(zip(axes, panels, strict=True)):
            outer = (index % ncols == 0, index + ncols >= len(panels))
            image = _matrix(ax, counts, title, outer)
        width, top, bottom = fig.get_figwidth(), axes[0].get_position(), axes[-1].get_position()
        bar = fig.add_axes((1 - (COLOR_BAR_INCHES - 0.2) / width, bottom.y0,
                            0.12 / width, top.y1 - bottom.y0))
        colorbar = fig.colorbar(image, cax=bar)
        colorbar.set_ticks([0, 0.02, 0.1, 0.25, 0.5, 1])
        colorbar.set_label("share of the true class (sqrt scale)", fontsize=6)
        colorbar.ax.tick_params(labelsize=6)
        return to_png(fig)
