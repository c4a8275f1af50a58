"""Compare two runs: what changed per spec x backend (x sweep point), and is it beyond noise?

Compared per matching (spec, point, backend): test accuracy, steady epoch seconds and the ONNX
Runtime CPU p50 (session_run) at each batch size. A change is flagged when it is larger than
the noise, judged as follows:

* both runs have more than one seed (and some spread): |delta| > threshold_sigma x pooled std,
  pooled std = sqrt((std_a^2 + std_b^2) / 2), the seed-to-seed spread of one measurement;
* otherwise a fixed rule: timings |delta| > min_rel x |A| (default 5%); accuracy |delta| >
  min_accuracy (default 0.005, half a percentage point).

A flagged change is a "regression" when it is worse (lower accuracy, slower) and an
"improvement" otherwise; but a timing change where either run timed some seed on a busy machine
(harness.measure.machine_load) is flagged "noisy" instead: the machine, not the code, may have moved
it. Rows present in one run only say so.

A gate (`harness compare --fail-on-regression`) also fails on what the numbers cannot show
(gate_problems): a job of B that failed, a job finished in A that B lacks, nothing compared
at all; a broken candidate never passes for want of values to flag.

Runs made with different settings (1 epoch against 2, 2 threads against 1, another torch, another
CPU) differ for reasons other than the code: setting_differences names each such setting, and
`harness compare` then shows the values without verdicts unless asked (--allow-different).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.records.folders import UNAVAILABLE
from harness.report.format import MISSING, NOISY_MARK, flag_set
from harness.report.load import RunData, load_run
from harness.report.tables import trained
from harness.run.job import at_step

KEYS = ["spec", "point", "backend"]
ACCURACY = "test_accuracy"
EPOCH = "steady_epoch_s"
ORT_PREFIX = "ort_cpu_p50_ms@batch"
COLUMNS = [*KEYS, "metric", "a_mean", "b_mean", "delta", "rel_delta", "a_std", "b_std",
           "a_seeds", "b_seeds", "a_noisy", "b_noisy", "rule", "threshold", "flag"]
NOISY_FLAG = "noisy"
VERDICTS = ("regression", "improvement", NOISY_FLAG)  # flags that judge a change

# job.json `config` fields that are no setting: names, labels, where the data lies, the resume
# key; the spec and sweep point are the compared rows' keys (the spec's hash is compared apart)
NOT_SETTINGS = frozenset({"job_id", "spec", "base_spec", "study", "backend", "overrides",
                          "data_dir", "config_hash", "spec_hash"})
FIRST_SETTINGS = ("epochs", "limit", "limit_test", "threads", "device", "batch_sizes",
                  "providers", "compile", "seed")  # the ones most often changed: listed first
MACHINE_SETTINGS = ("cpu", "logical_cores", "usable_cores", "python")  # not its name or load
# what a framework's record measured, or its name, rather than how it was set up
NOT_FRAMEWORK_SETTINGS = frozenset({"framework", "compile_seconds"})
Settings = dict[str, set[str]]  # setting name -> the values a run's jobs recorded


def seed_values(run: RunData) -> pd.DataFrame:
    """One value per job and metric: spec, point, backend, seed, metric, value, noisy (timed
    on a busy machine)."""
    done = trained(run.jobs).assign(noisy_test_accuracy=False)
    frames = [done[[*KEYS, "seed", metric, f"noisy_{metric}"]]
              .rename(columns={metric: "value", f"noisy_{metric}": "noisy"})
              .assign(metric=metric) for metric in (ACCURACY, EPOCH)]
    lat = run.latency
    ort = lat[(lat["source"] == "run") & (lat["runtime"] == "onnxruntime")
              & (lat["provider"] == "cpu") & (lat["mode"] == "session_run")
              & (lat["status"] == "ok")]
    if not ort.empty:
        frames.append(ort.assign(metric=[f"{ORT_PREFIX}{int(b)}" for b in ort["batch_size"]])
                      .rename(columns={"p50_ms": "value"})
                      [[*KEYS, "seed", "metric", "value", "noisy"]])
    values = pd.concat(frames, ignore_index=True)
    return values.dropna(subset=["value"]).assign(noisy=lambda f: f["noisy"].eq(True))


def _summary(run: RunData) -> pd.DataFrame:
    grouped = seed_values(run).groupby([*KEYS, "metric"])
    values = grouped["value"]
    return pd.DataFrame({"mean": values.mean(), "std": values.std(), "seeds": values.size(),
                         "noisy": grouped["noisy"].any()})


def _judge(row: pd.Series, threshold_sigma: float, min_rel: float,
           min_accuracy: float) -> tuple[str, float, str]:
    """(rule, threshold on |delta|, flag) for one compared row."""
    if math.isnan(row["a_mean"]) or math.isnan(row["b_mean"]):
        return "", math.nan, "only in A" if math.isnan(row["b_mean"]) else "only in B"
    pooled = math.sqrt((row["a_std"] ** 2 + row["b_std"] ** 2) / 2)
    if row["a_seeds"] > 1 and row["b_seeds"] > 1 and pooled > 0:
        rule, threshold = f"{threshold_sigma:g} sigma", threshold_sigma * pooled
    elif row["metric"] == ACCURACY:
        rule, threshold = "absolute", min_accuracy
    else:
        rule, threshold = "relative", min_rel * abs(row["a_mean"])
    if abs(row["delta"]) <= threshold:
        return rule, threshold, ""
    if row["metric"] != ACCURACY and (flag_set(row["a_noisy"]) or flag_set(row["b_noisy"])):
        return rule, threshold, NOISY_FLAG
    worse = row["delta"] < 0 if row["metric"] == ACCURACY else row["delta"] > 0
    return rule, threshold, "regression" if worse else "improvement"


def compare_runs(a: Path | str | RunData, b: Path | str | RunData, threshold_sigma: float = 3.0,
                 min_rel: float = 0.05, min_accuracy: float = 0.005) -> pd.DataFrame:
    """Run B against run A (the baseline): one row per (spec, point, backend, metric)."""
    run_a = a if isinstance(a, RunData) else load_run(a)
    run_b = b if isinstance(b, RunData) else load_run(b)
    both = _summary(run_a).merge(_summary(run_b), how="outer", left_index=True,
                                 right_index=True, suffixes=("_a", "_b"))
    if both.empty:
        return pd.DataFrame(columns=COLUMNS)
    both.columns = [f"{side}_{stat}" for stat, side in (c.rsplit("_", 1) for c in both.columns)]
    frame = both.reset_index()
    frame["delta"] = frame["b_mean"] - frame["a_mean"]
    frame["rel_delta"] = frame["delta"] / frame["a_mean"].abs().replace(0, np.nan)
    judged = [_judge(row, threshold_sigma, min_rel, min_accuracy) for _, row in frame.iterrows()]
    frame["rule"], frame["threshold"], frame["flag"] = zip(*judged, strict=True)
    frame["order"] = [_metric_order(metric) for metric in frame["metric"]]
    return frame.sort_values([*KEYS, "order"], ignore_index=True)[COLUMNS]


def gate_problems(run_a: RunData, run_b: RunData, frame: pd.DataFrame) -> list[str]:
    """One line per thing that fails a gate beyond the flagged values of `frame`
    (compare_runs of A and B): each job of B that failed (a compile mode B's platform cannot
    run is no failure), each job finished in A that B does not hold, and no value compared in
    both runs."""
    jobs_b = run_b.jobs
    problems = [f"B: {row.job_id} failed{at_step(row.failed_step)}: {row.error}"
                for row in jobs_b.itertuples() if row.status not in ("ok", UNAVAILABLE)]
    finished_a = run_a.jobs.loc[run_a.jobs["status"] == "ok", "job_id"]
    problems += [f"B: {job_id} missing (finished in A)"
                 for job_id in sorted(set(finished_a) - set(jobs_b["job_id"]))]
    if not (frame["a_mean"].notna() & frame["b_mean"].notna()).any():
        problems.append("nothing compared: no spec x backend has values in both runs")
    return problems


def _metric_order(metric: str) -> int:
    """accuracy, epoch time, then ORT latency by increasing batch size."""
    if metric.startswith(ORT_PREFIX):
        return 2 + int(metric.removeprefix(ORT_PREFIX))
    return 0 if metric == ACCURACY else 1


def _value(metric: str, value: float, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if metric == ACCURACY:
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def display_rows(frame: pd.DataFrame) -> list[list[str]]:
    """Text cells for a printed table: spec, point, backend, metric, A, B, delta, change,
    threshold, rule, flag (A and B as mean ± std when there are several seeds, marked when
    timed on a busy machine)."""
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for side in ("a", "b"):
            text = _value(row["metric"], row[f"{side}_mean"])
            if row[f"{side}_seeds"] > 1 and not math.isnan(row[f"{side}_std"]):
                text += f" ± {_value(row['metric'], row[f'{side}_std'])}"
            cells.append(text + (NOISY_MARK if flag_set(row[f"{side}_noisy"]) else ""))
        rel = MISSING if math.isnan(row["rel_delta"]) else f"{row['rel_delta']:+.1%}"
        rows.append([row["spec"], row["point"], row["backend"], row["metric"], *cells,
                     _value(row["metric"], row["delta"], signed=True), rel,
                     _value(row["metric"], row["threshold"]), row["rule"], row["flag"]])
    return rows


def setting_differences(run_a: RunData, run_b: RunData) -> list[tuple[str, str, str]]:
    """(setting, A's values, B's values) for each setting that differs: the job settings
    (job.json `config`) of the spec x point x backend rows both runs hold, each such spec's
    hash, the machine, package versions and each compared framework's set-up. A part one run
    does not record at all (older records, no trained job) is not compared; a setting missing
    from one side of a part both record is "not recorded" there."""
    shared = _row_keys(run_a) & _row_keys(run_b)
    sides = [(_job_settings(run, shared), _environment_settings(run, shared))
             for run in (run_a, run_b)]
    differences = []
    for part in (0, 1):
        a, b = sides[0][part], sides[1][part]
        if not (a and b):
            continue
        names = list(a) + [name for name in b if name not in a]
        differences += [(name, _values(a.get(name)), _values(b.get(name))) for name in names
                        if a.get(name) != b.get(name)]
    return differences


def without_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (compare_runs) with no change judged: for runs whose settings differ."""
    return frame.assign(flag=frame["flag"].where(~frame["flag"].isin(VERDICTS), ""))


def _row_keys(run: RunData) -> set[tuple[Any, ...]]:
    return set(run.jobs[KEYS].itertuples(index=False, name=None))


def _job_settings(run: RunData, shared: set[tuple[Any, ...]]) -> Settings:
    settings: Settings = {}
    for row in run.jobs.itertuples():
        if (row.spec, row.point, row.backend) not in shared:
            continue
        config = json.loads(row.config) if isinstance(row.config, str) else {}
        if config.get("spec_hash"):  # the same name, another model
            settings.setdefault(f"spec {row.spec}", set()).add(config["spec_hash"])
        for name, value in config.items():
            if name not in NOT_SETTINGS:
                settings.setdefault(name, set()).add(_text(value, none="default"))
    order = {name: index for index, name in enumerate(FIRST_SETTINGS)}
    return dict(sorted(settings.items(), key=lambda item: (order.get(item[0], len(order)),
                                                           item[0])))


def _environment_settings(run: RunData, shared: set[tuple[Any, ...]]) -> Settings:
    """The machine, packages and each compared framework's set-up, from the first trained
    job per backend."""
    backends = {backend for _, _, backend in shared}
    settings: Settings = {}
    for backend, environment in run.environments.items():
        machine, packages = environment.get("machine") or {}, environment.get("packages") or {}
        gpus = environment.get("gpu") or []
        entries = [(f"machine {key}", machine[key]) for key in MACHINE_SETTINGS if key in machine]
        entries += [("gpu", [gpu.get("name") for gpu in gpus]),
                    ("gpu driver", [gpu.get("driver") for gpu in gpus])]
        entries += [(f"package {name}", version) for name, version in packages.items()]
        if backend in backends:  # its versions are the packages' above
            entries += [(f"{backend} {key}", value)
                        for key, value in (environment.get("backend") or {}).items()
                        if key not in NOT_FRAMEWORK_SETTINGS and key not in packages]
        for name, value in entries:
            settings.setdefault(name, set()).add(_text(value, none="none"))
    return settings


def _text(value: Any, none: str) -> str:
    """A setting's value as printed: lists joined, None as `none` (what it means there)."""
    if value is None or value == []:
        return none
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(item, none) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _values(values: set[str] | None) -> str:
    """A run's values of one setting, numbers in their order (seeds 0, 1, 2)."""
    if not values:
        return "not recorded"

    def order(text: str) -> tuple[int, float, str]:
        try:
            return 0, float(text), text
        except ValueError:
            return 1, 0.0, text

    return ", ".join(sorted(values, key=order))
