"""A run's busy timings replaced by its quiet re-timings (harness.run.retime, RUN_DIR/retime).

A job's epoch times and latency records are replaced, all together, when any of them was
timed on a busy machine and a re-timing of its spec x point x backend x compile mode exists
whose own timings are all quiet. Accuracies, losses and curves always stay the run's. The
job's `timed` column says where its timings come from: "run", or "re-timed: N epochs, <UTC>".
"""

from __future__ import annotations

import shlex
from typing import Protocol

import pandas as pd


class RunData(Protocol):
    """What a re-timing reads and replaces of a loaded run (harness.report.load.RunData)."""

    jobs: pd.DataFrame
    latency: pd.DataFrame

RUN = "run"
TIMED = "timed"  # jobs column: where a job's timings come from
KEYS = ["spec", "point", "backend", "compile"]
# the job columns a re-timing replaces: epoch timings and their busy flags
EPOCH_COLUMNS = ["first_epoch_s", "compile_s", "steady_epoch_s", "mean_epoch_s",
                 "samples_per_second", "noisy_first_epoch_s", "noisy_steady_epoch_s",
                 "load_unknown_epochs"]
_LATENCY_JOB_KEYS = ["job_id", "spec", "point", "backend", "seed"]


def _busy_jobs(jobs: pd.DataFrame, latency: pd.DataFrame) -> set[str]:
    epochs = jobs["noisy_first_epoch_s"].eq(True) | jobs["noisy_steady_epoch_s"].eq(True)
    return set(jobs.loc[epochs, "job_id"]) | set(latency.loc[latency["noisy"].eq(True),
                                                             "job_id"])


def _quiet_retimes(retimes: RunData) -> pd.DataFrame:
    """The re-timings whose every timing was quiet, with a label, one per key."""
    jobs = retimes.jobs
    ok = jobs[(jobs["status"] == "ok") & jobs["steady_epoch_s"].notna()]
    quiet = ok[~ok["job_id"].isin(_busy_jobs(ok, retimes.latency))].copy()
    quiet[TIMED] = [f"re-timed: {int(n)} epochs, {finished}"
                    for n, finished in zip(quiet["trained_epochs"], quiet["finished_utc"],
                                           strict=True)]
    return quiet.drop_duplicates(KEYS)


def no_retimes(run: RunData) -> None:
    """Every job's timings are the run's own."""
    run.jobs[TIMED] = RUN


def apply_retimes(run: RunData, retimes: RunData) -> int:
    """Put `retimes`' quiet timings in place of `run`'s busy ones (in place); return how many
    jobs got them."""
    no_retimes(run)
    quiet = _quiet_retimes(retimes)
    if quiet.empty or run.jobs.empty:
        return 0
    busy = _busy_jobs(run.jobs, run.latency)
    jobs = run.jobs.reset_index(drop=True)
    merged = jobs[KEYS].merge(quiet[[*KEYS, "job_id"]].rename(columns={"job_id": "retime_id"}),
                              on=KEYS, how="left")
    replace = jobs["job_id"].isin(busy) & merged["retime_id"].notna() & (jobs["status"] == "ok")
    by_id = quiet.set_index("job_id")
    latency_parts = [run.latency[~run.latency["job_id"].isin(jobs.loc[replace, "job_id"])]]
    for index in jobs.index[replace]:
        source = by_id.loc[merged.at[index, "retime_id"]]
        for column in [*EPOCH_COLUMNS, TIMED]:
            jobs.at[index, column] = source[column]
        rows = retimes.latency[retimes.latency["job_id"] == source.name].copy()
        for column in _LATENCY_JOB_KEYS:
            rows[column] = jobs.at[index, column]
        latency_parts.append(rows)
    run.jobs = jobs
    run.latency = pd.concat([part for part in latency_parts if not part.empty] or
                            [run.latency.iloc[:0]], ignore_index=True)
    return int(replace.sum())


def retime_note(jobs: pd.DataFrame) -> str | None:
    """The line for the top of the report, when any job's timings were re-timed."""
    if TIMED not in jobs.columns:
        return None
    retimed = jobs[jobs[TIMED].fillna(RUN) != RUN]
    if retimed.empty:
        return None
    pairs = retimed[KEYS].drop_duplicates()
    return (f"The timings of {len(retimed)} job(s) ({len(pairs)} spec x backend pair(s)) come "
            "from a quiet re-timing (`harness retime`: the same job, a couple of full epochs, "
            "on a quiet machine), since the run's own were taken on a busy machine; accuracies "
            f"and curves are the run's. The Jobs table's `{TIMED}` column says which.")


def retime_command(out: str, jobs: pd.DataFrame) -> list[str]:
    """`harness retime OUT` (with its --epochs when not the default) when the report shows
    re-timed timings, else nothing."""
    from harness.run.retime import DEFAULT_EPOCHS

    if TIMED not in jobs.columns:
        return []
    labels = jobs[TIMED].dropna()
    epochs = sorted({int(label.split()[1]) for label in labels if label.startswith("re-timed:")})
    if not epochs:
        return []
    options = [] if epochs == [DEFAULT_EPOCHS] else ["--epochs", str(epochs[-1])]
    return [shlex.join(["harness", "retime", out, *options])]
