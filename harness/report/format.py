"""Numbers as a reader wants them in report.md / report.html (the CSVs keep full precision).

Formats follow the column names the tables use: accuracies and losses to 4 decimals, deltas
signed, times to 3 significant-ish digits, parity differences in scientific notation.

Timings taken on a busy machine (harness.measure.machine_load) carry NOISY_MARK. A table says which
by
boolean flag columns that the page does not show: `noisy_<column>` marks `<column>`, and a
plain `noisy` marks every timing column (TIMING_COLUMNS) beside it, in the same column group
when headers are (batch, metric) pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

MISSING = "–"
NOISY_MARK = " †"
NOISY = "noisy"
NOISY_PREFIX = f"{NOISY}_"
TIMING_COLUMNS = ("p50_ms", "p90_ms", "throughput")
MAX_TEXT = 240  # error messages are cut here on the page; the CSV has them whole
INTEGER_COLUMNS = ("params", "seeds", "seed", "batch_size", "runs", "jobs", "nodes", "bytes",
                   "opset", "epochs")


def _number(value: float) -> str:
    """Times in s or ms: 3 decimals below 10, fewer above, never scientific."""
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if size >= 10 else f"{value:.3f}"


def _formatter(column: str) -> Callable[[Any], str]:
    name = column.lower()
    signed = name.startswith("delta")
    if "max_abs_diff" in name:
        return lambda v: f"{v:.1e}"
    if "accuracy" in name or "agreement" in name or "loss" in name:
        return (lambda v: f"{v:+.4f}") if signed else (lambda v: f"{v:.4f}")
    if "speedup" in name or name.endswith("_ratio"):
        return lambda v: f"{v:.2f}×"
    if "_pp" in name:  # percentage points: differences signed, tolerances and spreads not
        # no "-0.00": a difference that rounds to zero is +0.00
        return ((lambda v: f"{round(v, 2) or 0.0:+.2f}") if name.startswith("delta")
                else (lambda v: f"{v:.2f}"))
    if "throughput" in name or name.startswith(INTEGER_COLUMNS) or name.endswith("_seeds"):
        return lambda v: f"{v:,.0f}"
    if signed:
        return lambda v: ("+" if v > 0 else "") + _number(v)
    return _number


def _cell(value: Any, formatter: Callable[[Any], str]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return formatter(value)
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " …"


def cell_text(value: Any, column: str) -> str:
    """One value as the page shows it in a column of that name."""
    return _cell(value, _formatter(column))


def _flag_targets(columns: pd.Index) -> dict[int, list[int]]:
    """Position of each noisy flag column -> positions of the columns it marks."""
    def split(column: Any) -> tuple[tuple, str]:
        return (tuple(column[:-1]), str(column[-1])) if isinstance(column, tuple) else ((),
                                                                                      str(column))
    where = {split(column): i for i, column in enumerate(columns)}
    targets = {}
    for i, column in enumerate(columns):
        group, key = split(column)
        if key == NOISY:
            names = TIMING_COLUMNS
        elif key.startswith(NOISY_PREFIX):
            names = (key.removeprefix(NOISY_PREFIX),)
        else:
            continue
        targets[i] = [where[(group, name)] for name in names if (group, name) in where]
    return targets


def flag_set(flag: Any) -> bool:
    """A flag cell that is set: True (NaN, None: a figure without a load record, unflagged)."""
    return isinstance(flag, (bool, np.bool_)) and bool(flag)


def display(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text; column names with spaces so that headers can wrap. An all-empty
    `point` column (a run without sweeps) is left out; noisy flag columns become NOISY_MARK
    beside the figures they flag."""
    point = next((c for c in frame.columns
                  if (c[0] if isinstance(c, tuple) else c) == "point"), None)
    if point is not None and (frame[point].fillna("") == "").all():
        frame = frame.loc[:, [column != point for column in frame.columns]]
    flags = _flag_targets(frame.columns)
    shown = [i for i in range(frame.shape[1]) if i not in flags]
    if frame.empty:
        return frame.iloc[:, shown].rename(
            columns=lambda c: c.replace("_", " ") if isinstance(c, str) else c)
    cells = {}
    for position, column in enumerate(frame.columns):
        key = column[-1] if isinstance(column, tuple) else column  # (batch, metric) headers
        formatter = _formatter(str(key))
        cells[position] = [_cell(v, formatter) for v in frame.iloc[:, position].tolist()]
    for flag, targets in flags.items():
        for row, value in enumerate(frame.iloc[:, flag].tolist()):
            for target in targets:
                if flag_set(value) and cells[target][row] != MISSING:
                    cells[target][row] += NOISY_MARK
    out = pd.DataFrame({i: cells[i] for i in shown}, index=frame.index)
    out.columns = frame.columns[shown]
    return out.rename(columns=lambda c: c.replace("_", " ") if isinstance(c, str) else c)


def group_columns(shown: pd.DataFrame, backends: list[str], delta_label: str) -> pd.DataFrame:
    """Two header rows: "test accuracy keras" -> ("test accuracy", "keras"), "published test
    accuracy" -> ("test accuracy", "published"), "delta x" -> (delta_label, "x")."""
    headers = []
    for column in shown.columns:
        owner = next((b for b in backends if column.endswith(f" {b}")), None)
        if owner:
            headers.append((column[: -len(owner) - 1], owner))
        elif column.startswith("published "):
            headers.append((column.removeprefix("published "), "published"))
        elif column.startswith("delta "):
            headers.append((delta_label, column.removeprefix("delta ")))
        else:
            headers.append((column, ""))
    out = shown.copy()
    out.columns = pd.MultiIndex.from_tuples(headers)
    return out


def with_spread(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """`<m>_mean` and `<m>_std` merged into one text column "mean ± std" per metric (marked
    when a `noisy_<m>` flag column says so)."""
    merged = [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    flags = {m: frame[f"{NOISY_PREFIX}{m}"].tolist() if f"{NOISY_PREFIX}{m}" in frame
             else [False] * len(frame) for m in metrics}
    out = display(frame.drop(columns=merged + [f"{NOISY_PREFIX}{m}" for m in metrics
                                              if f"{NOISY_PREFIX}{m}" in frame]))
    for metric in metrics:
        formatter = _formatter(metric)
        cells = []
        for mean, std, noisy in zip(frame[f"{metric}_mean"], frame[f"{metric}_std"],
                                    flags[metric], strict=True):
            text = _cell(mean, formatter)
            if not (std is None or (isinstance(std, float) and math.isnan(std))):
                text += f" ± {_cell(std, formatter)}"
            cells.append(text + (NOISY_MARK if flag_set(noisy) and text != MISSING else ""))
        out[metric.replace("_", " ")] = cells
    return out


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of text cells (pipes escaped)."""
    if frame.empty:
        return "_(none)_"

    def clean(value: Any) -> str:
        text = " ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
        return text.replace("|", "\\|").replace("\n", " ").strip()

    header = [clean(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)
