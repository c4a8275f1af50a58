"""What the report says, in order: sections of tables and plots, independent of Markdown/HTML.

Each table keeps its full-precision frame (written as CSV) beside the text the page shows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.measure.machine_load import MIN_INTERVAL_SECONDS, NOISY_OTHERS_CORES, noisy_note
from harness.records.folders import UNAVAILABLE
from harness.report import facts, plots
from harness.report import tables as T
from harness.report.blocks import Plot, Section, Table, slug
from harness.report.decision import (
    DECISION,
    Row,
    decision_frame,
    decision_intro,
    decision_rows,
    shown_decision,
)
from harness.report.extras import PHASES_CAPTION, jobs_table, machine_rows, phases_table
from harness.report.findings import Bullets, study_findings
from harness.report.format import (
    MISSING,
    NOISY,
    NOISY_MARK,
    display,
    group_columns,
    with_spread,
)
from harness.report.load import RunData
from harness.report.method import latency_method, machine_speed_rows
from harness.report.reproduce import report_command, reproduce_commands
from harness.report.reproduction import (
    expected_backends,
    reproduction_caption,
    reproduction_tables,
    shown_reproduction,
    zoo_studies,
)
from harness.report.retimed import retime_command, retime_note
from harness.report.speed import shown_speed, speed_table
from harness.report.speed_findings import protocol_sentences, untimed_note
from harness.report.speed_protocol import (
    labels_of,
    protocol_caption,
    protocol_table,
    shown_protocol,
)
from harness.report.speed_records import alias_groups, framework_name, pairs_of

LATENCY_ROW_KEYS = ["source", "spec", "point", "backend", "runtime", "provider", "mode"]
BUSY_LEGEND = (f"{NOISY_MARK.strip()} marks a figure timed on a busy machine (other processes "
               f"used more than {NOISY_OTHERS_CORES:g} CPU core on average).")


def _by_batch(frame: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Long rows (one per batch size) pivoted to one row per keys, a column group per batch."""
    if frame.empty:
        return display(frame)
    wide = frame.fillna({k: "" for k in keys}).set_index([*keys, "batch_size"])[values]
    wide = wide.unstack("batch_size").swaplevel(axis=1).sort_index(axis=1, level=0,
                                                                  sort_remaining=False)
    wide.columns = pd.MultiIndex.from_tuples([(f"batch {int(b)}", m) for b, m in wide.columns])
    return display(wide.reset_index())


def overview(run: RunData, commands: list[str]) -> Section:
    jobs, env = run.jobs, run.environment
    unavailable = int((jobs["status"] == UNAVAILABLE).sum())  # compile modes not run here
    machine = env.get("machine") or {}
    gpus = ", ".join(g.get("name", "?") for g in env.get("gpu") or []) or "none seen"
    rows = {
        "run directory": str(run.run_dir),
        "jobs": f"{len(jobs)} ({(jobs['status'] == 'ok').sum()} ok, "
                f"{len(T.failed_table(jobs))} failed"
                f"{f', {unavailable} unavailable' if unavailable else ''})",
        "specs": jobs["spec"].nunique(),
        "backends": ", ".join(sorted(jobs["backend"].dropna().unique())),
        "seeds": ", ".join(str(int(s)) for s in sorted(jobs["seed"].dropna().unique())),
        "sweep points": jobs["point"].replace("", pd.NA).nunique(),
        "created": (run.run or {}).get("created_utc", "–"),
        **{**machine_rows(run), **machine_speed_rows(run)},
        "GPU": gpus,
        "platform": f"{machine.get('platform', '–')}, Python {machine.get('python', '–')}",
        "commit": env.get("commit") or "–",
        "reproduce": " ; ".join(commands) or "–",
    }
    frame = pd.DataFrame({"": list(rows), "value": [str(v) for v in rows.values()]})
    return Section("Overview", "overview", items=[Table("overview", frame, frame)])


def by_backend(shown: pd.DataFrame, backends: list[str]) -> pd.DataFrame:
    """Metric over backend in two header rows: a wide table then fits the page."""
    first, second = T.DELTA_PAIR
    return group_columns(shown, backends, f"delta {first} − {second}")


def framework_section(framework: pd.DataFrame, seeds: pd.DataFrame,
                      backends: list[str], steady_note: str = "") -> Section:
    intro = ("Each row is one spec (and sweep point), trained from the same initial weights in "
             "every backend; values are means over seeds. Epoch times: the first epoch "
             "(tracing, compilation, warm-up) apart from the steady epoch, the median of the "
             f"epochs after the first ({MISSING} for a run of one epoch: it has none); compile = "
             "the first step of each batch shape within the first epoch, where tracing and "
             "compilation happen (XLA on Keras on JAX, its default). "
             f"{steady_note + ' ' if steady_note else ''}"
             f"delta = keras − torch. {BUSY_LEGEND}")
    spread = ("Accuracy and loss: mean ± sample standard deviation over the seeds of each spec "
              "x backend (a single seed has no spread). Steady epoch: one figure per spec x "
              "backend (the median over its seeds' jobs), with no spread: a re-timing times a "
              "spec once, so its seeds share one timing, and the study tables give the "
              "protocol's interval where the run has one.")
    shown = with_spread(seeds, T.SEED_METRICS)
    timing = T.SEED_TIMING.replace("_", " ")
    shown = shown[[c for c in shown.columns if c != timing] + [timing]]
    return Section("Framework comparison", "framework", intro, [
        # the study column is left to the CSV: the study sections group the same rows
        Table("framework", framework,
              by_backend(display(framework.drop(columns="study")), backends)),
        Table("seeds", seeds, shown, spread),
    ])


def facts_section(run: RunData) -> Section:
    """What the frameworks do differently, beside the timing tables, and what each job ran
    with (read back from the framework)."""
    settings = facts.settings_table(run.jobs)
    return Section("Framework facts", "facts", " ".join(facts.FACTS), [
        Table("framework_settings", settings, display(settings),
              "Per backend and device: compile mode, TF32, memory layout of the first "
              "convolution's output (– without one), threads and where the training data "
              "lived, as the frameworks reported them; jobs = how many ran so.")])


def parity_section(parity: pd.DataFrame) -> Section:
    intro = ("The exported ONNX model against the framework it came from, on the test set: "
             "largest absolute difference of the class probabilities and both accuracies "
             "(worst seed shown).")
    return Section("ONNX parity", "parity", intro, [Table("parity", parity, display(parity))])


def latency_section(run: RunData, latency: pd.DataFrame, tables: dict[str, pd.DataFrame]
                    ) -> Section:
    by = tables["latency"]
    section = Section("Latency", "latency", (
        f"{latency_method(run)} "
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
                                  f"Test accuracy vs ONNX Runtime CPU p50 at batch {batch}: "
                                  "each spec's backends joined; ▼ on the bottom edge: did not "
                                  "learn (off the scale)."))
    intervals = plots.speedup_intervals(run.speed if run.speed.specs else None)
    if intervals:
        section.items.append(Plot(
            "speedup_intervals", intervals,
            "ONNX Runtime speed-up on the CPU over each framework (framework time / ONNX "
            "Runtime time, timing protocol; right of the dashed line at 1 ONNX Runtime is "
            "faster): median per spec and batch size with its 95 % interval; hollow: timed on "
            "a busy machine."))
    lines = plots.latency_by_provider(by)
    if lines:
        section.items.append(Plot("latency_by_provider", lines,
                                  "p50 latency by batch size, per runtime / provider / mode "
                                  "(the run's own single timings)."))
    return section


SPEED_CAPTION = (
    "Steady epoch: mean over seeds of each job's steady epoch time (the first epoch, with "
    "tracing, compilation and warm-up, is left out); keras / torch above 1 means PyTorch's "
    "epochs are shorter. ONNX Runtime speed-up on the CPU: native p50 / ONNX Runtime p50 for "
    f"the same weights and batch size (above 1: ONNX Runtime is faster). {BUSY_LEGEND}")


def study_speed(run: RunData, tables: dict[str, pd.DataFrame], keys: list[tuple[str, str]],
                backends: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """A study's speed table (CSV), its page text and caption: the protocol's estimates with
    intervals and verdicts where the run has speed records of the study's specs (the run's own
    figures stay in the CSV), else the run's own figures."""
    speed = speed_table(tables["framework"], tables["speedup"], keys, backends)
    protocol = protocol_table(run, keys, tables["framework"])
    if protocol.empty:
        return speed, shown_speed(speed, backends), SPEED_CAPTION
    merged = speed.merge(protocol, on=T.KEYS, how="left")
    return (merged, shown_protocol(merged, labels_of(run), pairs_of(run.speed)),
            protocol_caption(run))


def _speed_findings(run: RunData, study: str, stem: str, speed: pd.DataFrame,
                    decision: list[Row]) -> dict[str, Any]:
    """study_findings' speed arguments: the protocol's sentences, or the note that the run's
    speed figures are single timings."""
    out = str(run.run_dir)
    if not run.speed.specs:
        return {"speed_note": untimed_note(out)}
    names = {label: framework_name(run, run.speed, label)
             for pair in pairs_of(run.speed) for label in (pair.a, pair.b)}
    return {"protocol": protocol_sentences(study, decision, names, f"{stem}_speed", speed,
                                           run.speed, out)}


def study_sections(run: RunData, tables: dict[str, pd.DataFrame],
                   variant_studies: pd.DataFrame | None = None,
                   repros: dict[str, pd.DataFrame] | None = None,
                   decision: list[Row] | None = None
                   ) -> tuple[list[Section], list[Bullets]]:
    """A section per study (reproduction and speed tables, plots) and its findings, with the
    best variants where `variant_studies` (harness.report.variants.study_table) has them;
    `repros`: the reproduction tables, `decision`: the decision table's rows."""
    sections, findings = [], []
    done = T.trained(run.jobs)
    ran = set(zip(done["spec"], done["point"], strict=True))
    backends = expected_backends(run)
    if repros is None:
        repros = reproduction_tables(run, tables["seeds"], str(run.run_dir))
    aliases = alias_groups(run.speed)
    for study, repro in repros.items():
        stem = f"study_{slug(study)}"
        keys = [key for key in zip(repro["spec"], repro["point"], strict=True) if key in ran]
        speed, shown, caption = study_speed(run, tables, keys, backends)
        section = Section(f"Study: {study}", stem, items=[
            Table(stem, repro, shown_reproduction(repro, backends),
                  reproduction_caption(repro)),
            Table(f"{stem}_speed", speed, shown, caption)])
        for name, png, caption in (
            ("loss", plots.loss_curves(run.history, keys),
             "Accuracy (left) and loss (right, log scale) per epoch, per spec: train (solid) "
             "and validation (dashed), mean over seeds (band: lowest to highest seed)."),
            ("confusion", plots.confusion_matrices(done, run.confusion,
                                                   plots.differing_keys(repro)),
             "Confusion matrices on the test set, only for the specs where Keras and PyTorch "
             "differ; normalised by row (true class), square-root colour scale."),
            ("weights", plots.weight_distributions(done, keys),
             "Final kernel weights per layer (lowest seed): box = quartiles, whiskers = "
             "5th-95th percentile."),
        ):
            if png:
                section.items.append(Plot(f"{stem}_{name}", png, caption))
        sections.append(section)
        variants = (None if variant_studies is None
                    else variant_studies[variant_studies["study"] == study])
        findings.append(study_findings(study, stem, repro, f"{stem}_speed", speed, backends,
                                       variants, aliases=aliases,
                                       **_speed_findings(run, study, stem, speed,
                                                         decision or [])))
    return sections, findings


def decision_section(run: RunData, rows: list[Row]) -> Section:
    """The answer first: tables/decision.csv, per study and over all studies."""
    return Section("Decision", "decision", decision_intro(run),
                   [Table(DECISION, decision_frame(rows), shown_decision(rows))])


def findings_section(findings: list[Bullets], commands: list[str]) -> Section:
    intro = ("Generated from the tables below; every figure links to the table it comes from "
             "(tables/findings.csv gives each figure's table, column, rows and statistic). "
             "pp: percentage points of test accuracy. "
             f"{NOISY_MARK.strip()}: timed on a busy machine.")
    reproduce = Bullets("Reproduce every table", [[command] for command in commands],
                        code=True)
    return Section("Findings", "findings", intro, [*findings, reproduce])


def load_warnings(run: RunData, latency: pd.DataFrame) -> list[str]:
    """Lines for the top of the report: how many timings were taken on a busy machine, and
    how many have no load record (so were not checked)."""
    done = T.trained(run.jobs)
    ok = latency[latency["status"] == "ok"]
    busy = int(done[T.NOISY_EPOCHS].to_numpy().sum()) + int(ok[NOISY].eq(True).sum())
    # per job: first and steady epoch time (a one-epoch job has no steady one); latency loops
    total = int(done[["first_epoch_s", "steady_epoch_s"]].notna().to_numpy().sum()) + len(ok)
    lines = [note] if (note := retime_note(run.jobs)) else []
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


def build_sections(run: RunData, latency: pd.DataFrame, benchmark_jsons: list[str] | None = None
                   ) -> list[Section]:
    """Every section of the report, the findings first; `latency` is the run's records plus
    those of `benchmark_jsons` (named in the command that reproduces the report)."""
    tables = T.all_tables(run.jobs, latency)
    failed = tables["failed"]
    out = str(run.run_dir)
    commands = [*reproduce_commands(run.jobs, out, zoo_studies()),
                *retime_command(out, run.jobs), report_command(out, benchmark_jsons or [])]
    from harness.report.variants import variant_sections, variant_tables  # builds on this

    variants = variant_tables(run)
    repros = reproduction_tables(run, tables["seeds"], out)
    decision = decision_rows(run, repros)
    studies, findings = study_sections(run, tables, variants.studies, repros, decision)
    jobs, phases = jobs_table(run.jobs), phases_table(run.jobs)

    return [
        decision_section(run, decision),
        findings_section(findings, commands),
        overview(run, commands),
        framework_section(tables["framework"], tables["seeds"],
                          sorted(T.trained(run.jobs)["backend"].unique()),
                          facts.steady_note(run.jobs)),
        facts_section(run),
        parity_section(tables["parity"]),
        latency_section(run, latency, tables),
        *variant_sections(variants),
        *studies,
        Section("Failed jobs", "failed", f"{len(failed)} job(s) did not finish.",
                [Table("failed", failed, display(failed))]),
        Section("Jobs", "jobs", "Every job with its wall time (train, export, parity and "
                "latency; a job resumed from its checkpoint adds its earlier processes' "
                "training time, `resumed_after_epoch` says where it continued, and starts when its "
                "first process did), in the order they started.", [
                    Table("jobs", jobs, display(jobs)),
                    Table("job_phases", phases, display(phases), PHASES_CAPTION)]),
    ]
