"""The report's variant section: what each runtime and variant buys, at what accuracy.

Reads the `variants` and `variant_records` that `harness.latency.variants` adds to each job's
latency.json (and the accuracy it puts beside the job's own records). A run timed without
variants has none, and its report has no such section.

- `variants` table: per spec x backend x variant x provider x mode x batch size, p50 (median
  over seeds), speed-up over the eager framework, the native predictor's first call (for the
  compiled framework: its compilation), accuracy and its change from the float32 model,
  argmax agreement, peak memory and the file's size, and the gate's verdict.
- `variants_best` table: per spec and batch size (1 and 32 where timed), the fastest variant
  within the accuracy gate.
- `variants_studies` table: per study and batch size, each runtime x variant: in how many of
  the study's specs it passed the gate and was the fastest within it; the best one is what
  the Findings say (harness.report.findings).
- `compiled_training` table (runs with `--compile compiled`): eager against compiled training,
  the first epoch (with the compilation) apart from the steady ones.
- one accuracy-vs-latency plot per spec: a panel per batch size, every runtime x variant, the
  Pareto front (no other point both faster and more accurate) joined by a line.

A compiled job (`harness run --compile`) times its export and the eager framework too (the
reference of its speed-ups); where the run has the eager job of the same spec, backend and
seed, those rows are the eager job's and the compiled job adds its compiled predictor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from harness.latency.variants.catalog import COMPILED, EAGER, FAILS_ACCURACY
from harness.measure.machine_load import is_noisy
from harness.records.models import PartialLatency
from harness.report import plots
from harness.report.blocks import Plot, Section, Table, slug
from harness.report.format import display
from harness.report.load import RunData
from harness.report.plots import grid, legend, plain_log

KEYS = ["study", "spec", "point", "backend", "runtime", "variant", "provider", "mode",
        "batch_size"]
BEST_BATCH_SIZES = (1, 32)
COLUMNS = [*KEYS, "p50_ms", "speedup_vs_eager", "first_call_s", "accuracy", "delta_accuracy",
           "argmax_agreement", "max_abs_diff", "peak_rss_mb", "increase_mb", "file_bytes",
           "gate", "pareto_front", "seeds", "noisy", "noisy_speedup_vs_eager"]
CANDIDATE = ["backend", "runtime", "variant", "provider", "mode"]  # one runtime x variant
STUDY_COLUMNS = ["study", "batch_size", "label", *CANDIDATE, "specs", "timed", "within_gate",
                 "fastest", "median_speedup_vs_eager", "noisy_median_speedup_vs_eager", "best"]
COUNT_COLUMNS = ["specs", "timed", "within_gate", "fastest"]  # shown as whole numbers
JOB_KEYS = ["study", "spec", "point", "backend", "seed"]
TRAINING_KEYS = ["spec", "point", "backend"]
EPOCH_COLUMNS = ["first_epoch_s", "steady_epoch_s"]


def _record_rows(latency: PartialLatency, keys: dict[str, Any]) -> list[dict[str, Any]]:
    """Every timed record that carries a variant, with its entry's accuracy and file."""
    entries = {(e["backend"], e["variant"]): e for e in latency.variants or []}
    rows = []
    for record in [entry.as_read()
                   for entry in [*latency.records, *(latency.variant_records or [])]]:
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
            "p50_ms": stats.get("p50_ms"), "first_call_s": record.get("first_call_seconds"),
            "accuracy": scores.get("accuracy"),
            "delta_accuracy": None if scores.get("accuracy") is None or reference is None
            else scores["accuracy"] - reference,
            "argmax_agreement": scores.get("argmax_agreement"),
            "max_abs_diff": scores.get("max_abs_diff"),
            "peak_rss_mb": memory.get("peak_rss_mb"), "increase_mb": memory.get("increase_mb"),
            "file_bytes": (entry.get("onnx") or {}).get("bytes"),
            "fails": bool(record.get("fails_accuracy")),
            "noisy": is_noisy(stats.get("machine_load"))})
    return rows


def _own_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """A compiled job's rows of the export and the eager framework are left to the eager job
    of the same spec, backend and seed where the run has its rows: one job per figure."""
    job_key = rows[JOB_KEYS].astype(str).agg("|".join, axis=1)
    eager_jobs = set(job_key[rows["job_mode"] == EAGER])
    keep = ((rows["job_mode"] == EAGER) | (rows["variant"] == rows["job_mode"])
            | ~job_key.isin(eager_jobs))
    return rows[keep]


def load_variant_records(run: RunData) -> pd.DataFrame:
    """One row per timed variant record of every finished job of the run (its latency.json as
    the run's loader read it)."""
    rows = []
    for job in run.jobs.itertuples(index=False):
        latency = run.latency_records.get(job.job_id)
        if latency is None:
            continue
        keys = {"study": job.study, "spec": job.spec, "point": job.point, "seed": job.seed,
                "job_id": job.job_id, "job_mode": job.compile}
        rows += _record_rows(latency, keys)
    return _own_rows(pd.DataFrame(rows)) if rows else pd.DataFrame(rows)


def variant_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Seeds combined (median p50, mean accuracy, highest memory; failing when any seed
    fails), with the speed-up over the eager framework on the same provider and batch."""
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    grouped = rows.groupby(KEYS, dropna=False)
    table = grouped.agg(
        p50_ms=("p50_ms", "median"), first_call_s=("first_call_s", "median"),
        accuracy=("accuracy", "mean"),
        delta_accuracy=("delta_accuracy", "mean"), argmax_agreement=("argmax_agreement", "min"),
        max_abs_diff=("max_abs_diff", "max"), peak_rss_mb=("peak_rss_mb", "max"),
        increase_mb=("increase_mb", "max"), file_bytes=("file_bytes", "max"),
        fails=("fails", "any"), seeds=("job_id", "nunique"), noisy=("noisy", "any"),
    ).reset_index()
    eager = table[(table["runtime"] == "native") & (table["variant"] == EAGER)]
    pair = ["spec", "point", "backend", "provider", "batch_size"]
    table = table.merge(eager[[*pair, "p50_ms", "noisy"]].rename(
        columns={"p50_ms": "eager_p50_ms", "noisy": "eager_noisy"}), on=pair, how="left")
    table["speedup_vs_eager"] = table["eager_p50_ms"] / table["p50_ms"]
    table["noisy_speedup_vs_eager"] = table["noisy"] | table["eager_noisy"].eq(True)
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
    columns = ["study", "spec", "point", "batch_size", *CANDIDATE, "p50_ms",
               "speedup_vs_eager", "accuracy", "delta_accuracy", "noisy"]
    passing = table[(table["gate"] == "ok") & table["batch_size"].isin(BEST_BATCH_SIZES)]
    if passing.empty:
        return pd.DataFrame(columns=columns)
    fastest = passing.sort_values("p50_ms").groupby(["spec", "point", "batch_size"]).head(1)
    return fastest[columns].sort_values(["spec", "point", "batch_size"], ignore_index=True)


def study_label(row: Any) -> str:
    """A row of `variants_studies` by name: study, batch size and runtime x variant."""
    return (f"{row.study}: batch {int(row.batch_size)}: {row.backend} {row.runtime} "
            f"{row.variant} {row.provider} {row.mode}")


def study_table(table: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per study and batch size in BEST_BATCH_SIZES, every runtime x variant timed: of the
    study's specs timed at that batch (`specs`), in how many it was timed, passed the gate and
    was the fastest within it (variants_best), and its median speed-up over the eager
    framework where it passed. `best`: of those that passed the gate in every spec, the one
    fastest in the most specs (ties: the higher median speed-up)."""
    scored = table[table["batch_size"].isin(BEST_BATCH_SIZES) & table["accuracy"].notna()]
    if scored.empty:
        return pd.DataFrame(columns=STUDY_COLUMNS)
    scored = scored.assign(spec_point=scored["spec"] + "|" + scored["point"].fillna(""),
                           passed=scored["gate"] == "ok")
    study_batch = ["study", "batch_size"]
    candidates = [*study_batch, *CANDIDATE]
    frame = scored.groupby(candidates, dropna=False).agg(
        timed=("spec_point", "nunique"), within_gate=("passed", "sum")).reset_index()
    passed = scored[scored["passed"]].groupby(candidates, dropna=False).agg(
        median_speedup_vs_eager=("speedup_vs_eager", "median"),
        noisy_median_speedup_vs_eager=("noisy_speedup_vs_eager", "any")).reset_index()
    frame = frame.merge(passed, on=candidates, how="left")
    fastest = best.groupby(candidates, dropna=False).size().rename("fastest").reset_index()
    frame = frame.merge(fastest, on=candidates, how="left").fillna({"fastest": 0})
    specs = scored.groupby(study_batch)["spec_point"].nunique().rename("specs").reset_index()
    frame = frame.merge(specs, on=study_batch)
    frame[COUNT_COLUMNS] = frame[COUNT_COLUMNS].astype(int)
    frame["label"] = [study_label(row) for row in frame.itertuples(index=False)]
    frame["best"] = False
    eligible = frame[frame["within_gate"] == frame["specs"]]
    ranked = eligible.sort_values(["fastest", "median_speedup_vs_eager"], ascending=False)
    frame.loc[ranked.groupby(study_batch).head(1).index, "best"] = True
    return frame[STUDY_COLUMNS].sort_values([*study_batch, "label"], ignore_index=True)


def _mode_means(jobs: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Per spec x point x backend, the jobs of one compile mode: mean epoch times and test
    accuracy over seeds, each epoch time flagged when any seed's was timed busy."""
    done = jobs[jobs["has_metrics"].fillna(False).astype(bool) & (jobs["compile"] == mode)]
    done = done.assign(**{f"noisy_{c}": done[f"noisy_{c}"].eq(True) for c in EPOCH_COLUMNS})
    grouped = done.groupby(TRAINING_KEYS)
    wide = grouped[[*EPOCH_COLUMNS, "test_accuracy"]].mean().join(
        grouped[[f"noisy_{c}" for c in EPOCH_COLUMNS]].any())
    wide.insert(0, "seeds", grouped["seed"].nunique())
    return wide.rename(columns=lambda c: f"{c}_{mode}").reset_index()


def _status(jobs: pd.DataFrame) -> str:
    """ok, or the first other status of these jobs with its reason (`unavailable: ...`)."""
    other = jobs[jobs["status"] != "ok"]
    return "ok" if other.empty else f"{other['status'].iloc[0]}: {other['error'].iloc[0]}"


def compiled_training_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per spec x point x backend with compiled jobs: eager against compiled training, mean
    over seeds; the first epoch holds the compilation, the steady one (median of the epochs
    after the first) does not; speed-up = eager steady / compiled steady."""
    compiled = jobs[jobs["compile"] == COMPILED]
    if compiled.empty:
        return pd.DataFrame(columns=[*TRAINING_KEYS, "status"])
    frame = pd.DataFrame([{**dict(zip(TRAINING_KEYS, key, strict=True)), "status": _status(group)}
                          for key, group in compiled.groupby(TRAINING_KEYS)])
    for mode in (EAGER, COMPILED):
        frame = frame.merge(_mode_means(jobs, mode), on=TRAINING_KEYS, how="left")
    frame["steady_speedup"] = (frame[f"steady_epoch_s_{EAGER}"]
                               / frame[f"steady_epoch_s_{COMPILED}"])
    frame["noisy_steady_speedup"] = (frame[f"noisy_steady_epoch_s_{EAGER}"].eq(True)
                                     | frame[f"noisy_steady_epoch_s_{COMPILED}"].eq(True))
    return frame.sort_values(TRAINING_KEYS, ignore_index=True)


@dataclass
class VariantTables:
    """The variant section's tables of one run (empty frames where it has none)."""

    table: pd.DataFrame  # variants
    best: pd.DataFrame  # variants_best: per spec
    studies: pd.DataFrame  # variants_studies: per study, what the Findings say
    training: pd.DataFrame  # compiled_training


def variant_tables(run: RunData) -> VariantTables:
    table = variant_table(load_variant_records(run))
    best = best_table(table)
    return VariantTables(table, best, study_table(table, best),
                         compiled_training_table(run.jobs))


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
        fig, axes = grid(len(sizes), ncols=min(len(sizes), 3), panel=(4.2, 3.2))
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
            plain_log(ax.xaxis, panel["p50_ms"])
            ax.set_title(f"batch {int(size)}")
            ax.set_xlabel("p50 latency (ms, log scale)")
            ax.set_ylabel("test accuracy")
        handles = [Line2D([], [], color=colors[n], marker="o", ls="", label=n) for n in names]
        handles += [Line2D([], [], color="black", ls="--", label="Pareto front"),
                    Line2D([], [], color="gray", marker="x", ls="", label=FAILS_ACCURACY)]
        legend(fig, handles)
        return plots.to_png(fig)


def _shown_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """The page's text of `variants_studies`: counts as whole numbers, the label left to the
    CSV (the columns beside it say the same)."""
    shown = display(frame.drop(columns="label"))
    for column in COUNT_COLUMNS:
        shown[column.replace("_", " ")] = frame[column].map(str)
    return shown


INTRO = (
    "Every runtime and variant per spec: ONNX Runtime graph optimisation levels, int8 "
    "(dynamic; static QDQ calibrated on training images) and float16 files, and the "
    "framework eager or compiled. Accuracy is measured on the test set; Δ is against the "
    "float32 model; a variant below the gate's share of the float32 accuracy is marked "
    f"`{FAILS_ACCURACY}`. Peak memory is the process's peak RSS while the variant was "
    "built and timed; file bytes are the ONNX file's size.")
TRAINING_CAPTION = (
    "Training eager and compiled (`harness run --compile`), mean over seeds: the first epoch "
    "holds the compilation (tracing, compiling the train step), the steady epoch (median of "
    "the epochs after the first) does not; steady speed-up = eager / compiled. A compiled "
    "mode this platform cannot run says `unavailable` and why.")


def variant_sections(tables: VariantTables) -> list[Section]:
    """The variant section, or none when the run timed no variants and compiled nothing."""
    table, best, studies = tables.table, tables.best, tables.studies
    if table.empty and tables.training.empty:
        return []
    section = Section("Variants: speed against accuracy", "variants", INTRO, [
        Table("variants", table, display(table),
              "speed-up vs eager = eager framework p50 / this p50, same provider and batch; "
              "first call: the native predictor's creation and first call, for the compiled "
              "framework its compilation, timed apart from the steady calls."),
        Table("variants_best", best, display(best),
              "The fastest variant within the accuracy gate, per spec, at batch 1 and 32."),
        Table("variants_studies", studies, _shown_counts(studies),
              "Per study and batch size, every runtime x variant: of the study's specs "
              "(specs), in how many it was timed, passed the accuracy gate and was the "
              "fastest within it; its median speed-up over the eager framework where it "
              "passed. best: of those within the gate in every spec, the fastest in the most "
              "specs (ties: the higher median speed-up)."),
    ] if not table.empty else [])
    if not tables.training.empty:
        section.items.append(Table("compiled_training", tables.training,
                                   display(tables.training), TRAINING_CAPTION))
    for spec, point in sorted(set(zip(table["spec"], table["point"], strict=True))):
        png = pareto_plot(table, spec, point)
        if png:
            name = plots.label((spec, point))
            section.items.append(Plot(f"variants_pareto_{slug(name)}", png, (
                f"{name}: test accuracy against p50 latency per batch size, every runtime x "
                "variant; dashed: the Pareto front; x: fails the accuracy gate.")))
    return [section]
