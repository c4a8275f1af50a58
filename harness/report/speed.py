"""Speed tables, one per study: how much faster one framework trains (steady epochs), and what
ONNX Runtime buys over each framework's own predictor at inference (CPU, per batch size).

Steady epoch times are means over seeds; the ratio is Keras / PyTorch (above 1: PyTorch's
epochs are shorter), and so for every other backend that ran (Keras on JAX / PyTorch, ...).
ONNX Runtime speed-up = native p50 / ONNX Runtime p50 on the CPU (above 1: ONNX Runtime is
faster). Every figure keeps its busy flag (`noisy_<column>`): a ratio or a
speed-up is busy when either side was timed on a busy machine.
"""

from __future__ import annotations

import pandas as pd

from harness.report.format import NOISY_PREFIX, display
from harness.report.tables import DELTA_PAIR, KEYS, others_vs_reference


def epoch_ratio_column(backend: str) -> str:
    """Steady epoch time of `backend` / that of DELTA_PAIR's second (PyTorch)."""
    return f"{backend}_over_{DELTA_PAIR[1]}_epoch_ratio"


EPOCH_RATIO = epoch_ratio_column(DELTA_PAIR[0])
ORT_PROVIDER, ORT_MODE = "cpu", "session_run"


def speedup_column(backend: str, batch_size: int) -> str:
    return f"ort_speedup_{backend}_batch{int(batch_size)}"


def _epochs(framework: pd.DataFrame, backends: list[str]) -> pd.DataFrame:
    columns = [c for b in backends for c in (f"steady_epoch_s_{b}",
                                               f"{NOISY_PREFIX}steady_epoch_s_{b}")]
    table = framework.reindex(columns=[*KEYS, *columns]).copy()
    first, second = DELTA_PAIR
    compared = ([first] if first in backends and second in backends else []) + \
        others_vs_reference(backends)
    for backend in compared:
        ratio = epoch_ratio_column(backend)
        table[ratio] = table[f"steady_epoch_s_{backend}"] / table[f"steady_epoch_s_{second}"]
        table[NOISY_PREFIX + ratio] = (
            table[f"{NOISY_PREFIX}steady_epoch_s_{backend}"].eq(True)
            | table[f"{NOISY_PREFIX}steady_epoch_s_{second}"].eq(True))
    return table


def _speedups(speedup: pd.DataFrame) -> pd.DataFrame:
    """Native / ONNX Runtime on the CPU per (spec, point), a column per backend x batch size."""
    cpu = speedup[(speedup["source"] == "run") & (speedup["provider"] == ORT_PROVIDER)
                  & (speedup["ort_mode"] == ORT_MODE)]
    if cpu.empty:
        return pd.DataFrame(columns=KEYS)
    wide = cpu.pivot_table(index=KEYS, columns=["backend", "batch_size"],
                           values=["speedup", "noisy_speedup"], aggfunc="first")
    out = pd.DataFrame(index=wide.index)
    for backend, batch in sorted({(b, s) for _, b, s in wide.columns}):
        column = speedup_column(backend, batch)
        out[column] = wide[("speedup", backend, batch)].astype(float)
        out[NOISY_PREFIX + column] = wide[("noisy_speedup", backend, batch)].eq(True)
    return out.reset_index()


def speed_table(framework: pd.DataFrame, speedup: pd.DataFrame, keys: list[tuple[str, str]],
                backends: list[str]) -> pd.DataFrame:
    """One row per (spec, point) of `keys` that trained: epochs, their ratio, speed-ups."""
    wanted = pd.DataFrame(keys, columns=KEYS)
    epochs = wanted.merge(_epochs(framework, backends), on=KEYS, how="inner")
    return epochs.merge(_speedups(speedup), on=KEYS, how="left").reset_index(drop=True)


def _header(column: str, backends: list[str]) -> tuple[str, str]:
    for backend in backends:
        if column == f"steady epoch s {backend}":
            return ("steady epoch (s)", backend)
        prefix = f"ort speedup {backend} batch"
        if column.startswith(prefix):
            return (f"ONNX Runtime speed-up, batch {column.removeprefix(prefix)}", backend)
    for backend in backends:
        if column == epoch_ratio_column(backend).replace("_", " "):
            return ("epoch time", f"{backend} / {DELTA_PAIR[1]}")
    return (column, "")


def shown_speed(table: pd.DataFrame, backends: list[str]) -> pd.DataFrame:
    """The page's text: busy figures marked, two header rows."""
    shown = display(table)
    shown.columns = pd.MultiIndex.from_tuples([_header(c, backends) for c in shown.columns])
    return shown
