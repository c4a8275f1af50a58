"""The report's tables, built from the frames of harness.report.load with pandas.

Rows are keyed by spec and sweep point (`point`, "" for the spec as written); jobs that differ
only in their seed are averaged (the seeds table shows their spread). Columns that vary by
backend are named `<metric>_<backend>`, deltas `delta_<metric>` = keras - torch. Boolean
`noisy_<column>` columns (a plain `noisy` in the latency table) say that a timing was taken on a
busy machine (harness.measure.machine_load): in any seed, or on either side of a delta or speed-up.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.backends import reference_backend
from harness.records.folders import UNAVAILABLE
from harness.training import EAGER

KEYS = ["spec", "point"]
FRAMEWORK_METRICS = ["test_accuracy", "test_loss", "final_train_loss", "first_epoch_s",
                     "compile_s", "steady_epoch_s"]
DELTA_METRICS = ["test_accuracy", "test_loss", "final_train_loss", "steady_epoch_s"]
DELTA_PAIR = ("keras", reference_backend())  # delta = first - second, when both backends ran


def others_vs_reference(backends: list[str]) -> list[str]:
    """The backends beyond DELTA_PAIR (Keras on JAX, on PyTorch), each compared with the pair's
    second (PyTorch) like the pair's first, when that ran."""
    return ([b for b in backends if b not in DELTA_PAIR] if DELTA_PAIR[1] in backends else [])
LATENCY_KEYS = ["source", "spec", "point", "backend", "runtime", "provider", "mode",
                "batch_size"]
SEED_METRICS = ["test_accuracy", "test_loss"]  # mean ± std over seeds
# one figure per spec x backend, never a spread over seeds: a re-timing times a spec once
SEED_TIMING = "steady_epoch_s"
ONE_CLASS = "seeds_one_class"  # seeds whose model predicted one class for every test image
NOISY_EPOCHS = ["noisy_first_epoch_s", "noisy_steady_epoch_s"]  # flags of the epoch timings
MIXED = "mixed"  # `placement` of a device ONNX Runtime figure whose compute partly ran on the CPU


def trained(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs with a metrics.json (a job that failed after training still counts here), eager
    ones: compiled jobs (`harness run --compile`) are the variants section's."""
    done = jobs[jobs["has_metrics"].fillna(False).astype(bool)
                & jobs["compile"].fillna(EAGER).eq(EAGER)]
    return done.assign(**{flag: done[flag].eq(True) for flag in NOISY_EPOCHS})


def _first(jobs: pd.DataFrame, column: str) -> pd.Series:
    return jobs.groupby(KEYS)[column].first()


def _one_class_seeds(predicted_classes: pd.Series) -> float:
    """How many seeds predicted one class for every test image; NaN when none recorded its
    confusion matrix."""
    known = predicted_classes.dropna()
    return float((known == 1).sum()) if not known.empty else math.nan


def framework_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per spec (and sweep point): each backend's metrics, mean over seeds; deltas."""
    done = trained(jobs)
    if done.empty:
        return pd.DataFrame(columns=[*KEYS, "study", "params"])
    grouped = done.groupby([*KEYS, "backend"])
    means = grouped[FRAMEWORK_METRICS].mean().join(grouped[NOISY_EPOCHS].any())
    means.insert(0, "seeds", grouped.size())
    wide = means.unstack("backend")
    backends = sorted(done["backend"].unique())
    wide.columns = [f"{metric}_{backend}" for metric, backend in wide.columns]
    wide = wide[[f"{metric}_{backend}" for metric in ["seeds", *FRAMEWORK_METRICS,
                                                      *NOISY_EPOCHS] for backend in backends]]
    first, second = DELTA_PAIR
    if first in backends and second in backends:
        for metric in DELTA_METRICS:
            wide[f"delta_{metric}"] = wide[f"{metric}_{first}"] - wide[f"{metric}_{second}"]
            if f"noisy_{metric}" in NOISY_EPOCHS:
                wide[f"noisy_delta_{metric}"] = (wide[f"noisy_{metric}_{first}"].eq(True)
                                                 | wide[f"noisy_{metric}_{second}"].eq(True))
    wide.insert(0, "params", done.groupby(KEYS)["params_total"].max())
    wide.insert(0, "study", _first(done, "study"))
    return wide.reset_index().sort_values(KEYS, ignore_index=True)


def seeds_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds per spec x backend (std is NaN for a single seed); the
    steady epoch time once per spec x backend (the median over its seeds' jobs), no spread:
    the seeds of a re-timed spec share one timing, whose spread over seeds would be 0."""
    done = trained(jobs)
    columns = [*KEYS, "backend", "seeds", ONE_CLASS] + [
        f"{m}_{s}" for m in SEED_METRICS for s in ("mean", "std")] + [
        SEED_TIMING, f"noisy_{SEED_TIMING}"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    grouped = done.groupby([*KEYS, "backend"])
    table = grouped[SEED_METRICS].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table.insert(0, "seeds", grouped["seed"].nunique())
    table.insert(1, ONE_CLASS, grouped["predicted_classes"].agg(_one_class_seeds))
    table[SEED_TIMING] = grouped[SEED_TIMING].median()
    table[f"noisy_{SEED_TIMING}"] = grouped[f"noisy_{SEED_TIMING}"].any()
    return table.reset_index()[columns]


def parity_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Native framework vs ONNX Runtime on the test set, per spec x backend (worst seed)."""
    exported = jobs[jobs["has_export"].fillna(False).astype(bool)].copy()
    columns = [*KEYS, "backend", "max_abs_diff", "native_accuracy", "onnx_accuracy",
               "accuracy_equal", "argmax_agreement", "passed", "provider", "opset", "nodes",
               "bytes"]
    if exported.empty:
        return pd.DataFrame(columns=columns)
    exported["accuracy_equal"] = (exported["parity_native_accuracy"]
                                  == exported["parity_onnx_accuracy"])
    exported["passed"] = exported["parity_passed"].fillna(False).astype(bool)
    table = exported.groupby([*KEYS, "backend"]).agg(
        max_abs_diff=("parity_max_abs_diff", "max"),
        native_accuracy=("parity_native_accuracy", "mean"),
        onnx_accuracy=("parity_onnx_accuracy", "mean"),
        accuracy_equal=("accuracy_equal", "all"),
        argmax_agreement=("parity_argmax_agreement", "min"),
        passed=("passed", "all"),
        provider=("parity_provider", "first"),
        opset=("onnx_opset", "first"),
        nodes=("onnx_nodes", "first"),
        bytes=("onnx_bytes", "first"),
    )
    return table.reset_index()[columns]


def latency_table(latency: pd.DataFrame) -> pd.DataFrame:
    """Measured latencies per spec x backend x runtime/provider/mode x batch size.

    Several seeds of a spec time the same architecture: their medians are combined (median of
    p50 and p90, median throughput) and `jobs` says how many there were. `placement` is MIXED
    when any of those records was mixed (a CUDA session that ran compute nodes on the CPU).
    """
    columns = [*LATENCY_KEYS, "provider_used", "placement", "p50_ms", "p90_ms", "throughput",
               "jobs"]
    ok = latency[latency["status"] == "ok"].assign(mixed=lambda f: f["mixed"].eq(True))
    ok = ok.assign(noisy=ok["noisy"].eq(True))  # any seed timed on a busy machine: noisy
    if ok.empty:
        return pd.DataFrame(columns=columns)
    table = ok.groupby(LATENCY_KEYS, dropna=False).agg(
        provider_used=("provider_used", "first"), mixed=("mixed", "any"),
        p50_ms=("p50_ms", "median"), p90_ms=("p90_ms", "median"),
        throughput=("throughput", "median"), jobs=("job_id", "nunique"))
    table["noisy"] = ok.groupby(LATENCY_KEYS, dropna=False)["noisy"].any()
    table["placement"] = table["mixed"].map({True: MIXED, False: ""})
    return table.reset_index()[[*columns, "noisy"]]


def unavailable_table(latency: pd.DataFrame) -> pd.DataFrame:
    """Latency records that were not measured (no CUDA, a failing provider) and why: one row
    per reason, since one missing provider usually hits every spec alike."""
    missed = latency[latency["status"] != "ok"].fillna({"reason": "", "point": ""})
    keys = ["backend", "runtime", "provider", "mode", "status", "reason"]
    if missed.empty:
        return pd.DataFrame(columns=[*keys, "jobs", "batch_sizes", "specs"])
    grouped = missed.groupby(keys, dropna=False)
    table = grouped.agg(
        jobs=("job_id", "nunique"),
        batch_sizes=("batch_size", lambda sizes: ", ".join(
            str(int(s)) for s in sorted(sizes.dropna().unique()))),
        specs=("spec", lambda specs: ", ".join(sorted(specs.dropna().unique()))))
    return table.reset_index()


def speedup_table(latency: pd.DataFrame) -> pd.DataFrame:
    """ONNX Runtime vs the native framework: same backend, provider and batch size.

    speedup = native p50 / ORT p50, so above 1 means ONNX Runtime is faster. `ort_placement`
    carries the ORT figure's MIXED mark.
    """
    keys = ["source", "spec", "point", "backend", "provider", "batch_size"]
    columns = [*keys, "ort_mode", "ort_placement", "ort_p50_ms", "native_p50_ms", "speedup"]
    native = latency[latency["runtime"] == "native"][[*keys, "p50_ms"]]
    ort = latency[latency["runtime"] == "onnxruntime"][[*keys, "mode", "placement", "p50_ms"]]
    if native.empty or ort.empty:
        return pd.DataFrame(columns=columns)
    pairs = ort.merge(native, on=keys, suffixes=("_ort", "_native"))
    pairs = pairs.rename(columns={"mode": "ort_mode", "placement": "ort_placement",
                                  "p50_ms_ort": "ort_p50_ms", "p50_ms_native": "native_p50_ms"})
    pairs["speedup"] = pairs["native_p50_ms"] / pairs["ort_p50_ms"]
    return _pair_flags(pairs[columns], latency, keys).sort_values(keys, ignore_index=True)


def _pair_flags(pairs: pd.DataFrame, latency: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Speed-up pairs with the noisy flags of each side, and of the speed-up (either side)."""
    runtime = latency["runtime"]
    ort = latency[runtime == "onnxruntime"][[*keys, "mode", "noisy"]].rename(
        columns={"mode": "ort_mode", "noisy": "noisy_ort_p50_ms"})
    native = latency[runtime == "native"][[*keys, "noisy"]].rename(
        columns={"noisy": "noisy_native_p50_ms"})
    pairs = pairs.merge(ort, on=[*keys, "ort_mode"], how="left").merge(native, on=keys,
                                                                         how="left")
    pairs["noisy_speedup"] = (pairs["noisy_ort_p50_ms"].eq(True)
                              | pairs["noisy_native_p50_ms"].eq(True))
    return pairs


def failed_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs whose status is not ok: where they stopped and the error they reported (a compile
    mode the platform cannot run is no failure: the variants section says why)."""
    columns = ["job_id", "spec", "point", "backend", "seed", "failed_step", "error"]
    failed = jobs[~jobs["status"].isin(["ok", UNAVAILABLE])]
    return failed[columns].sort_values("job_id", ignore_index=True)


def all_tables(jobs: pd.DataFrame, latency: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every table of the report by its CSV name (the study tables: harness.report.reproduction
    and harness.report.speed)."""
    latency_by = latency_table(latency)
    return {
        "framework": framework_table(jobs),
        "seeds": seeds_table(jobs),
        "parity": parity_table(jobs),
        "latency": latency_by,
        "latency_unavailable": unavailable_table(latency),
        "speedup": speedup_table(latency_by),
        "failed": failed_table(jobs),
    }
