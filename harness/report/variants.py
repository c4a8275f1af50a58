"""The report's variant section: what each runtime and variant buys, at what accuracy.

Reads the `variants` and `variant_records` that `harness.variants` adds to each job's
latency.json (and the accuracy it puts beside the job's own records). A run timed without
variants has none, and its report has no such section.

- `variants` table: per spec x backend x variant x provider x mode x batch size, p50 (median
  over seeds), speed-up over the eager framework, accuracy and its change from the float32
  model, argmax agreement, peak memory and the file's size, and the gate's verdict.
- `variants_best` table: per spec and batch size (1 and 32 where timed), the fastest variant
  within the accuracy gate.
- one accuracy-vs-latency plot per spec: a panel per batch size, every runtime x variant, the
  Pareto front (no other point both faster and more accurate) joined by a line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from harness.machine_load import is_noisy
from harness.report import plots
from harness.report.format import display
from harness.report.load import point_label, read_json_or_none
from harness.report.plots import _grid, _legend, _plain_log
from harness.report.sections import Plot, Section, Table, slug
from harness.run import layout
from harness.variants.catalog import EAGER, FAILS_ACCURACY

KEYS = ["spec", "point", "backend", "runtime", "variant", "provider", "mode", "batch_size"]
BEST_BATCH_SIZES = (1, 32)
COLUMNS = [*KEYS, "p50_ms", "speedup_vs_eager", "accuracy", "delta_accuracy",
           "argmax_agreement", "max_abs_diff", "peak_rss_mb", "increase_mb", "file_bytes",
           "gate", "pareto_front", "seeds", "noisy"]


def _record_rows(latency: dict[str, Any], keys: dict[str, Any]) -> list[dict[str, Any]]:
    """Every timed record that carries a variant, with its entry's accuracy and file."""
    entries = {(e["backend"], e["variant"]): e for e in latency.get("variants") or []}
    rows = []
    for record in [*latency.get("records", []), *latency.get("variant_records", [])]:
        entry = entries.get((record.get("backend"), record.get("variant")))
        if entry is None or record.get("status") != "ok":
            continue
        scores = (entry.get("accuracy") or {}).get(record["provider"]) or {}
        memory, stats = record.get("memory") or {}, record.get("stats") or {}
        reference = entry.get("reference_accuracy")
        rows.append({
            **keys, "backend": record["backend"], "runtime": record["runtime"],
            "variant": record["variant"], "provider": record["provider"],
            "mode": record["mode"], "batch_size": record["batch_size"],
            "p50_ms": stats.get("p50_ms"), "accuracy": scores.get("accuracy"),
            "delta_accuracy": None if scores.get("accuracy") is None or reference is None
            else scores["accuracy"] - reference,
            "argmax_agreement": scores.get("argmax_agreement"),
            "max_abs_diff": scores.get("max_abs_diff"),
            "peak_rss_mb": memory.get("peak_rss_mb"), "increase_mb": memory.get("increase_mb"),
            "file_bytes": (entry.get("onnx") or {}).get("bytes"),
            "fails": bool(record.get("fails_accuracy")),
            "noisy": is_noisy(stats.get("machine_load"))})
    return rows


def load_variant_records(run_dir: Path) -> pd.DataFrame:
    """One row per timed variant record of every finished job of `run_dir`."""
    rows, notes = [], []
    for folder in layout.finished_job_dirs(run_dir):
        job = read_json_or_none(folder / layout.JOB_FILE, notes) or {}
        latency = read_json_or_none(folder / layout.LATENCY_FILE, notes) or {}
        config = job.get("config") or {}
        keys = {"spec": config.get("base_spec") or config.get("spec")
                or (latency.get("spec") or {}).get("name") or folder.name,
                "point": point_label(config.get("overrides")), "job_id": folder.name}
        rows += _record_rows(latency, keys)
    return pd.DataFrame(rows)


def variant_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Seeds combined (median p50, mean accuracy, highest memory; failing when any seed
    fails), with the speed-up over the eager framework on the same provider and batch."""
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    grouped = rows.groupby(KEYS, dropna=False)
    table = grouped.agg(
        p50_ms=("p50_ms", "median"), accuracy=("accuracy", "mean"),
        delta_accuracy=("delta_accuracy", "mean"), argmax_agreement=("argmax_agreement", "min"),
        max_abs_diff=("max_abs_diff", "max"), peak_rss_mb=("peak_rss_mb", "max"),
        increase_mb=("increase_mb", "max"), file_bytes=("file_bytes", "max"),
        fails=("fails", "any"), seeds=("job_id", "nunique"), noisy=("noisy", "any"),
    ).reset_index()
    eager = table[(table["runtime"] == "native") & (table["variant"] == EAGER)]
    pair = ["spec", "point", "backend", "provider", "batch_size"]
    table = table.merge(eager[[*pair, "p50_ms"]].rename(columns={"p50_ms": "eager_p50_ms"}),
                        on=pair, how="left")
    table["speedup_vs_eager"] = table["eager_p50_ms"] / table["p50_ms"]
    table["gate"] = table["fails"].map({True: FAILS_ACCURACY, False: "ok"})
    table.loc[table["accuracy"].isna(), "gate"] = ""
    table["pareto_front"] = False
    for _, panel in table.groupby(["spec", "point", "batch_size"], dropna=False):
        table.loc[pareto_front(panel).index, "pareto_front"] = True
    return table[COLUMNS].sort_values(KEYS, ignore_index=True)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """The points no other point beats: each faster than every more accurate one, and more
    accurate than every faster one (a slower point of equal accuracy is not on it)."""
    timed = points.dropna(subset=["p50_ms", "accuracy"])
    ordered = timed.sort_values(["p50_ms", "accuracy"], ascending=[True, False])
    best_before = ordered["accuracy"].cummax().shift(fill_value=-math.inf)
    return ordered[ordered["accuracy"] > best_before]


def best_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per spec and batch size in BEST_BATCH_SIZES: the fastest variant that passes the gate."""
    columns = ["spec", "point", "batch_size", "backend", "runtime", "variant", "provider",
               "mode", "p50_ms", "speedup_vs_eager", "accuracy", "delta_accuracy", "noisy"]
    passing = table[(table["gate"] == "ok") & table["batch_size"].isin(BEST_BATCH_SIZES)]
    if passing.empty:
        return pd.DataFrame(columns=columns)
    fastest = passing.sort_values("p50_ms").groupby(["spec", "point", "batch_size"]).head(1)
    return fastest[columns].sort_values(["spec", "point", "batch_size"], ignore_index=True)


def _series(row: pd.Series) -> str:
    return f"{row['backend']} {row['variant']} {row['provider']}" + (
        f" {row['mode']}" if row["runtime"] == "onnxruntime" else "")


def pareto_plot(table: pd.DataFrame, spec: str, point: str) -> bytes | None:
    """Accuracy against p50 per batch size for one spec; the Pareto front joined."""
    rows = table[(table["spec"] == spec) & (table["point"] == point)].dropna(
        subset=["p50_ms", "accuracy"])
    if rows.empty:
        return None
    rows = rows.assign(series=rows.apply(_series, axis=1))
    names = sorted(rows["series"].unique())
    colors = dict(zip(names, plt.get_cmap("tab20").colors * 4, strict=False))
    sizes = sorted(rows["batch_size"].unique())
    with plt.rc_context(plots.STYLE):
        fig, axes = _grid(len(sizes), ncols=min(len(sizes), 3), panel=(4.2, 3.2))
        for ax, size in zip(axes, sizes, strict=True):
            panel = rows[rows["batch_size"] == size]
            for _, row in panel.iterrows():
                failing = row["gate"] == FAILS_ACCURACY
                ax.scatter(row["p50_ms"], row["accuracy"], s=24, color=colors[row["series"]],
                           marker="x" if failing else "o")
            front = panel[panel["pareto_front"]].sort_values("p50_ms")
            ax.step(front["p50_ms"], front["accuracy"], where="post", color="black", lw=0.8,
                    ls="--")
            ax.set_xscale("log")
            _plain_log(ax.xaxis, panel["p50_ms"])
            ax.set_title(f"batch {int(size)}")
            ax.set_xlabel("p50 latency (ms, log scale)")
            ax.set_ylabel("test accuracy")
        handles = [Line2D([], [], color=colors[n], marker="o", ls="", label=n) for n in names]
        handles += [Line2D([], [], color="black", ls="--", label="Pareto front"),
                    Line2D([], [], color="gray", marker="x", ls="", label=FAILS_ACCURACY)]
        _legend(fig, handles)
        return plots.to_png(fig)


def variant_sections(run_dir: Path) -> list[Section]:
    """The variant section, or none when the run timed no variants."""
    table = variant_table(load_variant_records(Path(run_dir)))
    if table.empty:
        return []
    best = best_table(table)
    section = Section("Variants: speed against accuracy", "variants", (
        "Every runtime and variant per spec: ONNX Runtime graph optimisation levels, int8 "
        "(dynamic; static QDQ calibrated on training images) and float16 files, and the "
        "framework eager or compiled. Accuracy is measured on the test set; Δ is against the "
        "float32 model; a variant below the gate's share of the float32 accuracy is marked "
        f"`{FAILS_ACCURACY}`. Peak memory is the process's peak RSS while the variant was "
        "built and timed; file bytes are the ONNX file's size."), [
        Table("variants", table, display(table),
              "speed-up vs eager = eager framework p50 / this p50, same provider and batch."),
        Table("variants_best", best, display(best),
              "The fastest variant within the accuracy gate, per spec, at batch 1 and 32."),
    ])
    for spec, point in sorted(set(zip(table["spec"], table["point"], strict=True))):
        png = pareto_plot(table, spec, point)
        if png:
            name = plots.label((spec, point))
            section.items.append(Plot(f"variants_pareto_{slug(name)}", png, (
                f"{name}: test accuracy against p50 latency per batch size, every runtime x "
                "variant; dashed: the Pareto front; x: fails the accuracy gate.")))
    return [section]
