"""What every plot shares: the style, backend colours, the panel grid, log-axis labels, the
legend, and rendering to a small palette PNG."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is written headless, e.g. on CI

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullLocator  # noqa: E402
from PIL import Image  # noqa: E402

from harness.backends import REGISTRY  # noqa: E402

DPI = 100
PANEL = (3.0, 2.3)  # inches per small-multiple panel
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
    """The backend's own colour (BackendInfo.color); an unknown one, a stable other one."""
    info = REGISTRY.get(backend)
    if info is not None:
        return info.color
    others = plt.get_cmap("tab10").colors[2:]
    return matplotlib.colors.to_hex(others[sum(map(ord, backend)) % len(others)])


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


def grid(count: int, ncols: int = 4, panel: tuple[float, float] = PANEL, right: float = 0.15
          ) -> tuple[Figure, list[Any]]:
    """`count` panels in rows of `ncols`, `right` inches free on the right (a colour bar).
    Fixed spacing rather than tight_layout: with dozens of panels the layout solver costs more
    than drawing them."""
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    width, height = panel[0] * ncols, panel[1] * nrows
    # margins in inches, not fractions: a tall figure would otherwise get a tall blank band
    margins = {"left": 0.6 / width, "right": 1 - right / width, "top": 1 - 0.45 / height,
               "bottom": 0.55 / height, "wspace": 0.35, "hspace": 0.6}
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(width, height),
                             gridspec_kw=margins)
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def plain_log(axis: Any, values: Iterable[float]) -> None:
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


def legend(fig: Figure, handles: list[Line2D]) -> None:
    per_row = max(2, int(fig.get_figwidth() / 1.9))  # a legend no wider than the panels
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=min(len(handles), per_row), frameon=False)
