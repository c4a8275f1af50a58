"""Final kernel weights per layer: one box per backend (lowest seed)."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from harness.report.plots.base import (
    MAX_WEIGHT_SAMPLES,
    STYLE,
    Key,
    backend_color,
    grid,
    label,
    legend,
    to_png,
)
from harness.spec.initializers import load_weights


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
        fig, axes = grid(len(panels))
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
        legend(fig, [Line2D([], [], color=backend_color(b), lw=6, alpha=0.6, label=b)
                      for b in backends])
        return to_png(fig)
