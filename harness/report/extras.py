"""What a reader needs to judge a report besides its numbers: the threads each framework ran
with, how long the run and each job took, and (harness.report.reproduce) how to run it again.
"""

from __future__ import annotations

import json

import pandas as pd

from harness.records import folders
from harness.report.load import PHASE_COLUMNS, RunData
from harness.report.retimed import TIMED
from harness.report.tables import trained

JOB_COLUMNS = ["job_id", "spec", "point", "backend", "seed", "status", "trained_epochs",
               "resumed_after_epoch",
               "job_seconds", "started_utc", "finished_utc", TIMED]


def duration(seconds: float) -> str:
    """1 h 05 min, 3 min 20 s, 12.3 s."""
    if pd.isna(seconds):
        return "–"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


def _requested_threads(jobs: pd.DataFrame) -> str:
    values = {json.loads(text).get("threads") for text in jobs["config"].dropna()}
    shown = sorted("default (every core)" if v is None else f"--threads {v}" for v in values)
    return ", ".join(shown) or "–"


def threads_text(run: RunData) -> str:
    """The threads asked for, and those each framework and ONNX Runtime reported using."""
    parts = [f"asked: {_requested_threads(run.jobs)}"]
    for backend, environment in sorted(run.environments.items()):
        used = environment.get("backend") or {}
        parts.append(f"{backend}: {used.get('intra_op_threads', '?')} intra-op, "
                     f"{used.get('inter_op_threads', '?')} inter-op")
    ort = run.latency[run.latency["runtime"] == "onnxruntime"]["threads"].dropna()
    if not ort.empty:
        parts.append("ONNX Runtime: " + ", ".join(str(int(t)) for t in sorted(ort.unique()))
                     + " intra-op")
    return "; ".join(parts)


def wall_time_text(jobs: pd.DataFrame) -> str:
    """The run's wall time, from the first start to the last finish (any pause between an
    interrupted and a resumed run included), and the sum of the job times: jobs that ran at
    once (`--workers N`, Ray) overlap, so the sum can exceed the wall time."""
    if jobs.empty:
        return "–"
    starts = pd.to_datetime(jobs["started_utc"], errors="coerce", utc=True)
    finishes = pd.to_datetime(jobs["finished_utc"], errors="coerce", utc=True)
    job_sum = (f"{duration(jobs['job_seconds'].sum())} sum of job times in {len(jobs)} jobs "
               "(jobs run at once overlap)")
    if not (starts.notna().any() and finishes.notna().any()):
        return job_sum
    span = (finishes.max() - starts.min()).total_seconds()
    return (f"{duration(span)} run wall time, first start {starts.min():%Y-%m-%d %H:%M} UTC "
            f"to last finish {finishes.max():%Y-%m-%d %H:%M} UTC (pauses included); {job_sum}")


def machine_rows(run: RunData) -> dict[str, str]:
    """CPU, cores, threads, library versions, wall time: rows of the overview."""
    env = run.environment
    machine = env.get("machine") or {}
    versions: dict[str, str] = {}
    for environment in run.environments.values():
        versions.update(environment.get("packages") or {})
    return {
        "CPU": f"{machine.get('cpu', '–')} ({machine.get('logical_cores', '?')} logical cores)",
        "threads": threads_text(run),
        "libraries": ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "–",
        "wall time": wall_time_text(run.jobs),
        "trained epochs": _epochs_text(run.jobs),
    }


def _epochs_text(jobs: pd.DataFrame) -> str:
    done = trained(jobs)
    counts = sorted({int(n) for n in done["trained_epochs"].dropna()})
    return ", ".join(str(n) for n in counts) or "–"


def phases_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Where a finished job's time goes, per backend: mean seconds of each part (job.json
    `phases`), and the jobs that recorded them."""
    columns = [c for c in PHASE_COLUMNS if c in jobs.columns]
    done = jobs[(jobs["status"] == "ok") & jobs["phase_total_s"].notna()]
    if done.empty:
        return pd.DataFrame(columns=["backend", "jobs", *columns])
    table = done.groupby("backend")[columns].mean().reset_index()
    table.insert(1, "jobs", done.groupby("backend").size().to_numpy())
    return table


PHASES_CAPTION = ("Mean seconds of each part of a finished job, per backend: "
                  + "; ".join(f"{name}: {text}" for name, text in folders.JOB_PHASES.items())
                  + "; total: from the job's process start to its record.")


def jobs_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Every job with its wall time, in the order the jobs started."""
    return jobs[JOB_COLUMNS].sort_values(["started_utc", "job_id"], ignore_index=True,
                                         na_position="last")
