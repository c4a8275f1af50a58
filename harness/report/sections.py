"""What the report says, in order: sections of tables and plots, independent of Markdown/HTML.

Each table keeps its full-precision frame (written as CSV) beside the text the page shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from harness.machine_load import MIN_INTERVAL_SECONDS, NOISY_OTHERS_CORES, noisy_note
from harness.report import plots
from harness.report import tables as T
from harness.report.format import NOISY, NOISY_MARK, display, group_columns, with_spread
from harness.report.load import RunData

LATENCY_ROW_KEYS = ["source", "spec", "point", "backend", "runtime", "provider", "mode"]
BUSY_LEGEND = (f"{NOISY_MARK.strip()} marks a figure timed on a busy machine (other processes "
               f"used more than {NOISY_OTHERS_CORES:g} CPU core on average).")


@dataclass
class Table:
    name: str  # CSV file stem
    frame: pd.DataFrame  # what the CSV holds
    shown: pd.DataFrame  # the text the page shows
    caption: str = ""


@dataclass
class Plot:
    name: str  # PNG file stem
    png: bytes
    caption: str


@dataclass
class Section:
    title: str
    anchor: str
    intro: str = ""
    items: list[Table | Plot] = field(default_factory=list)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "x"


def _by_batch(frame: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Long rows (one per batch size) pivoted to one row per keys, a column group per batch."""
    if frame.empty:
        return display(frame)
    wide = frame.fillna({k: "" for k in keys}).set_index([*keys, "batch_size"])[values]
    wide = wide.unstack("batch_size").swaplevel(axis=1).sort_index(axis=1, level=0,
                                                                  sort_remaining=False)
    wide.columns = pd.MultiIndex.from_tuples([(f"batch {int(b)}", m) for b, m in wide.columns])
    return display(wide.reset_index())


def overview(run: RunData) -> Section:
    jobs, env = run.jobs, run.environment
    machine, packages = env.get("machine") or {}, env.get("packages") or {}
    gpus = ", ".join(g.get("name", "?") for g in env.get("gpu") or []) or "none seen"
    rows = {
        "run directory": str(run.run_dir),
        "jobs": f"{len(jobs)} ({(jobs['status'] == 'ok').sum()} ok, "
                f"{(jobs['status'] != 'ok').sum()} failed)",
        "specs": jobs["spec"].nunique(),
        "backends": ", ".join(sorted(jobs["backend"].dropna().unique())),
        "seeds": ", ".join(str(int(s)) for s in sorted(jobs["seed"].dropna().unique())),
        "sweep points": jobs["point"].replace("", pd.NA).nunique(),
        "created": (run.run or {}).get("created_utc", "–"),
        "CPU": f"{machine.get('cpu', '–')} ({machine.get('logical_cores', '?')} logical cores)",
        "GPU": gpus,
        "platform": f"{machine.get('platform', '–')}, Python {machine.get('python', '–')}",
        "commit": env.get("commit") or "–",
        "packages": ", ".join(f"{k} {v}" for k, v in packages.items()) or "–",
    }
    frame = pd.DataFrame({"": list(rows), "value": [str(v) for v in rows.values()]})
    return Section("Overview", "overview", items=[Table("overview", frame, frame)])


def by_backend(shown: pd.DataFrame, backends: list[str]) -> pd.DataFrame:
    """Metric over backend in two header rows: a wide table then fits the page."""
    first, second = T.DELTA_PAIR
    return group_columns(shown, backends, f"delta {first} − {second}")


def framework_section(framework: pd.DataFrame, seeds: pd.DataFrame,
                      backends: list[str]) -> Section:
    intro = ("Each row is one spec (and sweep point), trained from the same initial weights in "
             "every backend; values are means over seeds. Epoch times: the first epoch "
             "(tracing, compilation, warm-up) apart from the steady epochs. "
             f"delta = keras − torch. {BUSY_LEGEND}")
    spread = ("Mean ± sample standard deviation over the seeds of each spec x backend "
              "(a single seed has no spread).")
    return Section("Framework comparison", "framework", intro, [
        # the study column is left to the CSV: the study sections group the same rows
        Table("framework", framework,
              by_backend(display(framework.drop(columns="study")), backends)),
        Table("seeds", seeds, with_spread(seeds, T.SEED_METRICS), spread),
    ])


def parity_section(parity: pd.DataFrame) -> Section:
    intro = ("The exported ONNX model against the framework it came from, on the test set: "
             "largest absolute difference of the class probabilities and both accuracies "
             "(worst seed shown).")
    return Section("ONNX parity", "parity", intro, [Table("parity", parity, display(parity))])


def latency_section(run: RunData, latency: pd.DataFrame, tables: dict[str, pd.DataFrame]
                    ) -> Section:
    by = tables["latency"]
    section = Section("Latency", "latency", (
        "Per-call latency in milliseconds (p50/p90) and throughput in samples/s per runtime, "
        "execution provider, mode and batch size; `source` says whether it comes from the "
        "run's own measurements or a merged pytest-benchmark file (which has no p90). "
        f"{BUSY_LEGEND}"))
    section.items.append(Table("latency", by, _by_batch(by, LATENCY_ROW_KEYS,
                                                        ["p50_ms", "p90_ms", "throughput",
                                                         NOISY])))
    speed = tables["speedup"]
    section.items.append(Table("speedup", speed, _by_batch(
        speed, ["source", "spec", "point", "backend", "provider", "ort_mode"],
        ["speedup", f"{NOISY}_speedup"]),
        "ONNX Runtime speed-up over the native framework: native p50 / ORT p50 for the same "
        "backend, provider and batch size (above 1: ONNX Runtime is faster)."))
    missed = tables["latency_unavailable"]
    if not missed.empty:
        section.items.append(Table("latency_unavailable", missed, display(missed),
                                   "Not measured, and why."))
    ort_cpu = latency[(latency["source"] == "run") & (latency["runtime"] == "onnxruntime")
                      & (latency["provider"] == "cpu") & (latency["status"] == "ok")]
    batch = int(ort_cpu["batch_size"].min()) if not ort_cpu.empty else None
    scatter = plots.accuracy_vs_latency(T.trained(run.jobs), latency, batch)
    if scatter:
        section.items.append(Plot("accuracy_vs_latency", scatter,
                                  f"Test accuracy vs ONNX Runtime CPU p50 at batch {batch}."))
    lines = plots.latency_by_provider(by)
    if lines:
        section.items.append(Plot("latency_by_provider", lines,
                                  "p50 latency by batch size, per runtime / provider / mode."))
    return section


def study_sections(run: RunData, framework: pd.DataFrame) -> list[Section]:
    sections = []
    done = T.trained(run.jobs)
    backends = sorted(done["backend"].unique())
    for study, table in T.study_tables(run.jobs, framework).items():
        keys = list(zip(table["spec"], table["point"], strict=True))
        stem = f"study_{slug(study)}"
        shown = by_backend(display(table), backends)
        section = Section(f"Study: {study}", stem, items=[Table(stem, table, shown, (
            "Measured (mean over seeds) beside the numbers the source notebook published."))])
        for name, png, caption in (
            ("loss", plots.loss_curves(run.history, keys),
             "Loss per epoch: train (solid) and validation (dashed), seeds averaged."),
            ("confusion", plots.confusion_matrices(done, run.confusion, keys),
             "Confusion matrices on the test set, normalised by row (true class)."),
            ("weights", plots.weight_distributions(done, keys),
             "Final kernel weights per layer (lowest seed): box = quartiles, whiskers = "
             "5th-95th percentile."),
        ):
            if png:
                section.items.append(Plot(f"{stem}_{name}", png, caption))
        sections.append(section)
    return sections


def load_warnings(run: RunData, latency: pd.DataFrame) -> list[str]:
    """Lines for the top of the report: how many timings were taken on a busy machine, and
    how many have no load record (so were not checked)."""
    done = T.trained(run.jobs)
    ok = latency[latency["status"] == "ok"]
    busy = int(done[T.NOISY_EPOCHS].to_numpy().sum()) + int(ok[NOISY].eq(True).sum())
    total = 2 * len(done) + len(ok)  # per job: first and steady epoch time; latency loops
    lines = []
    if busy:
        lines.append(f"{busy} of {total} timings (first and steady epoch time of each job, each "
                     f"latency measurement) are marked {NOISY_MARK.strip()}: {noisy_note()}.")
    epochs = int(done["load_unknown_epochs"].fillna(done["trained_epochs"]).sum())
    loops = int(ok["others_cores"].isna().sum())
    if epochs or loops:
        lines.append(f"The machine's load is unknown for {epochs} training epoch(s) and {loops} "
                     "latency measurement(s) (recorded without it, not on Linux, or shorter "
                     f"than {MIN_INTERVAL_SECONDS:g} s): those timings were not checked.")
    return lines


def build_sections(run: RunData, latency: pd.DataFrame) -> list[Section]:
    """Every section of the report; `latency` is the run's records plus merged benchmarks."""
    tables = T.all_tables(run.jobs, latency)
    failed = tables["failed"]
    return [
        overview(run),
        framework_section(tables["framework"], tables["seeds"],
                          sorted(T.trained(run.jobs)["backend"].unique())),
        parity_section(tables["parity"]),
        latency_section(run, latency, tables),
        *study_sections(run, tables["framework"]),
        Section("Failed jobs", "failed", f"{len(failed)} job(s) did not finish.",
                [Table("failed", failed, display(failed))]),
    ]
