"""Reproduction tables, one per study: did each model reach the test accuracy its notebook
published, and do Keras and PyTorch agree, within seed noise?

Rows are the study's specs: every zoo spec whose `reference.study` is the study, run or not,
plus any other spec (or sweep point) the run put in it. Per backend: mean and sample standard
deviation over seeds. Accuracy differences are in percentage points (pp). A difference within
max(0.5 pp, 2 x seed std) gives `reproduced` (against the published figure) or `agree` (Keras
against PyTorch, with the larger of their two seed stds); beyond it, `differs`. One seed has
no spread: the 0.5 pp floor alone decides. A published figure that the notebook's own records
disagree about (`reference.published_ambiguity`) is shown as ambiguous. A sweep point has no
published figure: the notebook trained the spec as written. A spec x backend with no finished
job is "not run", with the command that runs it. Rows are what the run was asked to do (its
jobs and the jobs its command planned), not the rest of a study.

A job is compared with its published figure only when it trained as the notebook did: every
epoch of the spec, on the whole training set, tested on the whole test set. A shorter run is
"not comparable (1 of 15 epochs, 2,000 of 60,000 training images)"; Keras and PyTorch are still
compared with each other, as they trained alike.
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import cache
from typing import Any

import pandas as pd

from harness.data import SPLIT_SIZES
from harness.report.format import MISSING, cell_text
from harness.report.load import RunData
from harness.report.reproduce import missing_job_settings, option_tokens, run_command
from harness.report.specs import point_label, spec_reference, study_of
from harness.report.tables import DELTA_PAIR, ONE_CLASS, others_vs_reference
from harness.run.plan import resolve_specs
from harness.spec import SpecError, list_specs, load_spec

ACCURACY_FLOOR_PP = 0.5
SPREAD_FACTOR = 2.0
PP = 100.0  # accuracy (a fraction) to percentage points
REPRODUCED, AGREE, DIFFERS = "reproduced", "agree", "differs"
AMBIGUOUS = "ambiguous"
NOT_RUN = "not run"
NOT_COMPARABLE = "not comparable"
DID_NOT_LEARN = "did not learn"
_ROUNDING_PP = 1e-9  # 0.5 pp computed as 0.50000000001 is on the boundary, not beyond it


def tolerance_pp(seed_std_pp: float | None) -> float:
    """max(0.5 pp, 2 x seed std); a missing std (one seed) leaves the floor."""
    if seed_std_pp is None or math.isnan(seed_std_pp):
        return ACCURACY_FLOOR_PP
    return max(ACCURACY_FLOOR_PP, SPREAD_FACTOR * seed_std_pp)


def verdict(delta_pp: float | None, seed_std_pp: float | None, within: str = REPRODUCED
            ) -> str:
    """`within` when |delta| <= tolerance (the boundary counts as within), DIFFERS beyond;
    "" when there is nothing to compare."""
    if delta_pp is None or math.isnan(delta_pp):
        return ""
    return within if is_within(delta_pp, tolerance_pp(seed_std_pp)) else DIFFERS


def is_within(delta_pp: float, tolerance: float) -> bool:
    """|delta| <= tolerance, the boundary included."""
    return abs(delta_pp) <= tolerance + _ROUNDING_PP


def _tolerance_if(delta_pp: float, seed_std_pp: float) -> float:
    """The tolerance a difference was judged by (NaN where there is no difference)."""
    return math.nan if math.isnan(delta_pp) else tolerance_pp(seed_std_pp)


@cache
def zoo_studies() -> dict[str, tuple[str, ...]]:
    """Study -> the zoo specs in it."""
    studies: dict[str, list[str]] = defaultdict(list)
    for name in list_specs():
        studies[study_of(spec_reference(None, name))].append(name)
    return {study: tuple(names) for study, names in studies.items()}


def expected_backends(run: RunData) -> list[str]:
    """The backends of the run's command, and any other a job ran; Keras and PyTorch first."""
    config = (run.run or {}).get("config") or {}
    seen = set(config.get("backends") or []) | set(run.jobs["backend"].dropna())
    return [b for b in DELTA_PAIR if b in seen] + sorted(seen - set(DELTA_PAIR))


def _published(run: RunData, spec: str, point: str) -> dict[str, Any]:
    """The published figures of a row: its jobs' reference, else the zoo's."""
    empty = {"published_test_accuracy": None, "published_test_loss": None,
             "published_ambiguity": ""}
    if point:
        return empty
    rows = run.jobs[(run.jobs["spec"] == spec) & (run.jobs["point"] == "")]
    if not rows.empty:
        return rows.iloc[0][list(empty)].to_dict()
    reference = spec_reference(None, spec)
    return {key: reference.get(key) or default for key, default in empty.items()}


@cache
def _notebook_setup(spec: str) -> tuple[int, dict[str, int]] | None:
    """(epochs, split sizes) the zoo spec's notebook trained with; None for a spec not in the
    zoo (its own file: no published figure to compare with)."""
    if spec not in list_specs():
        return None
    zoo = load_spec(spec)
    return zoo.train.epochs, SPLIT_SIZES.get(zoo.input.dataset_name, {})


def setup_gap(run: RunData, key: tuple[str, str], backend: str) -> str:
    """"" when every finished job of the row trained as the notebook did; else what differs,
    e.g. "1 of 15 epochs, 2,000 of 60,000 training images"."""
    setup = _notebook_setup(key[0])
    jobs = run.jobs[(run.jobs["spec"] == key[0]) & (run.jobs["point"] == key[1])
                    & (run.jobs["backend"] == backend) & run.jobs["has_metrics"].fillna(False)
                    .astype(bool)]
    if setup is None or jobs.empty:
        return ""
    epochs, sizes = setup
    gaps = []
    for column, full, what in (("trained_epochs", epochs, "epochs"),
                               ("n_train", sizes.get("training"), "training images"),
                               ("n_test", sizes.get("test"), "test images")):
        if column not in jobs or full is None:
            continue
        fewest = pd.to_numeric(jobs[column], errors="coerce").min()
        if not math.isnan(fewest) and fewest < full:
            gaps.append(f"{int(fewest):,} of {full:,} {what}")
    return ", ".join(gaps)


def _not_run_command(run: RunData, spec: str, backends: list[str], out: str) -> str:
    """The command that runs the missing backends of a spec, with run.json's settings (one
    command when every backend has the same settings and seeds)."""
    settings = [missing_job_settings(run.run, spec, backend) or ({}, None)
                for backend in backends]
    options = {(tuple(option_tokens(s)), tuple(seeds or ())) for s, seeds in settings}
    if len(options) == 1:
        return run_command(settings[0][0], [spec], backends, settings[0][1], out)
    return "; ".join(run_command(s, [spec], [backend], seeds, out)
                     for backend, (s, seeds) in zip(backends, settings, strict=True))


def _not_learning(stats: dict[str, float]) -> str:
    """"did not learn (1 of 3 seeds)" when a seed's model gave every test image one class: its
    accuracy is that class's share, and the spread it adds would make any gap look like seed
    noise, so no reproduced/agree verdict is given; "" otherwise."""
    count = stats[ONE_CLASS]
    if math.isnan(count) or count <= 0:
        return ""
    return f"{DID_NOT_LEARN} ({int(count)} of {int(stats['seeds'])} seeds)"


def _stats(seeds: pd.DataFrame, key: tuple[str, str], backend: str) -> dict[str, float]:
    rows = seeds[(seeds["spec"] == key[0]) & (seeds["point"] == key[1])
                 & (seeds["backend"] == backend)]
    columns = ["seeds", ONE_CLASS, "test_accuracy_mean", "test_accuracy_std", "test_loss_mean",
               "test_loss_std"]
    if rows.empty:
        return {column: math.nan for column in columns}
    return {column: float(rows.iloc[0][column]) for column in columns}


def versus_column(name: str, backend: str) -> str:
    """`<name>_<backend>_vs_<PyTorch>`: a backend beyond DELTA_PAIR against PyTorch."""
    return f"{name}_{backend}_vs_{DELTA_PAIR[1]}"


def _versus(row: dict[str, Any], first: str, second: str) -> tuple[float, float]:
    """Mean test accuracy of `first` − `second` in pp, and the larger seed std of the two."""
    stds = [row[f"test_accuracy_std_{b}"] * PP for b in (first, second)]
    spread = max((s for s in stds if not math.isnan(s)), default=math.nan)
    return (row[f"test_accuracy_mean_{first}"] - row[f"test_accuracy_mean_{second}"]) * PP, spread


def _row(run: RunData, seeds: pd.DataFrame, key: tuple[str, str], backends: list[str],
         out: str, asked: dict[tuple[str, str], set[str]] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"spec": key[0], "point": key[1], **_published(run, *key)}
    published = row["published_test_accuracy"]
    published = math.nan if published is None else float(published)
    missing, planned = [], set(backends) if asked is None else asked.get(key, set())
    stuck: dict[str, str] = {}  # backend -> "did not learn (...)", or ""
    for backend in backends:
        stats = _stats(seeds, key, backend)
        if math.isnan(stats["seeds"]) and backend in planned:
            missing.append(backend)
        std_pp = stats["test_accuracy_std"] * PP
        gap = setup_gap(run, key, backend)
        delta = math.nan if gap else (stats["test_accuracy_mean"] - published) * PP
        row.update({f"{name}_{backend}": value for name, value in stats.items()})
        stuck[backend] = _not_learning(stats)
        row.update({f"delta_pp_published_{backend}": delta,
                    f"tolerance_pp_{backend}": _tolerance_if(delta, std_pp),
                    f"verdict_{backend}": (f"{NOT_COMPARABLE} ({gap})"
                                           if gap and not math.isnan(published)
                                           else stuck[backend] or verdict(delta, std_pp))})
    first, second = DELTA_PAIR
    if first in backends and second in backends:
        delta, spread = _versus(row, first, second)
        row.update({"delta_pp_frameworks": delta, "seed_std_pp": spread,
                    "tolerance_pp_frameworks": _tolerance_if(delta, spread),
                    "verdict_frameworks": _pair_verdict(stuck, (first, second),
                                                        verdict(delta, spread, AGREE))})
    for other in others_vs_reference(backends):  # Keras on JAX, on PyTorch: against PyTorch
        delta, spread = _versus(row, other, second)
        row.update({versus_column("delta_pp", other): delta,
                    versus_column("tolerance_pp", other): _tolerance_if(delta, spread),
                    versus_column("verdict", other): _pair_verdict(
                        stuck, (other, second), verdict(delta, spread, AGREE))})
    row["not_run"] = ", ".join(missing) if not key[1] else ""
    row["command"] = _not_run_command(run, key[0], missing, out) if row["not_run"] else ""
    return row


def _pair_verdict(stuck: dict[str, str], pair: tuple[str, str], judged: str) -> str:
    """`judged`, unless a model of the pair did not learn in some seed: then that says it."""
    names = [backend for backend in pair if stuck.get(backend)]
    return f"{DID_NOT_LEARN} ({', '.join(names)})" if names else judged


def asked_jobs(run: RunData) -> dict[tuple[str, str], set[str]] | None:
    """(spec, point) -> backends the run was asked for: its command's zoo specs x backends
    (run.json config; sweeps give their points through the jobs list) and every job the last
    command planned (run.json jobs). None without a run.json: what was asked is unknown."""
    if not run.run:
        return None
    asked: dict[tuple[str, str], set[str]] = defaultdict(set)
    config = run.run.get("config") or {}
    if not config.get("sets"):
        try:
            names = resolve_specs(list(config.get("specs") or []))
        except SpecError:  # a pattern the zoo no longer matches: its jobs still say
            names = []
        for name in (n for n in names if n in list_specs()):
            asked[(name, "")] |= set(config.get("backends") or [])
    for job in (run.run.get("jobs") or []):
        if isinstance(job, dict) and job.get("spec") and job.get("backend"):
            asked[(job["spec"], point_label(job.get("overrides")))].add(job["backend"])
    return asked


def study_keys(run: RunData) -> dict[str, list[tuple[str, str]]]:
    """Study -> its rows (spec, point): what the run was asked to do (asked_jobs) and every job
    it has, finished or failed; a study's other specs are not listed."""
    keys: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for study, spec, point in zip(run.jobs["study"], run.jobs["spec"], run.jobs["point"],
                                  strict=True):
        keys[study].add((spec, point))
    planned_study = {job.get("spec"): job.get("study") for job in
                     ((run.run or {}).get("jobs") or []) if isinstance(job, dict)}
    for spec, point in asked_jobs(run) or {}:
        study = planned_study.get(spec) or study_of(spec_reference(None, spec))
        keys[study].add((spec, point))
    return {study: sorted(rows) for study, rows in sorted(keys.items())}


def reproduction_tables(run: RunData, seeds: pd.DataFrame, out: str
                        ) -> dict[str, pd.DataFrame]:
    """Study -> its reproduction table; `seeds` is tables.seeds_table, `out` the run folder as
    the commands name it."""
    backends, asked = expected_backends(run), asked_jobs(run)
    return {study: pd.DataFrame([_row(run, seeds, key, backends, out, asked) for key in keys])
            for study, keys in study_keys(run).items()}


def _mean_std(mean: float, std: float, column: str) -> str:
    text = cell_text(mean, column)
    if text != MISSING and not math.isnan(std):
        text += f" ± {cell_text(std, column)}"
    return text


def _published_text(value: Any, ambiguity: str, column: str) -> str:
    text = cell_text(value, column)
    return f"{text} ({AMBIGUOUS})" if ambiguity and text != MISSING else text


def shown_reproduction(table: pd.DataFrame, backends: list[str]) -> pd.DataFrame:
    """The page's text of a reproduction table, two header rows."""
    shown: dict[tuple[str, str], list[str]] = {("spec", ""): table["spec"].tolist()}
    if (table["point"] != "").any():
        shown[("point", "")] = table["point"].tolist()
    for metric, label in (("test_accuracy", "accuracy"), ("test_loss", "loss")):
        shown[("published", label)] = [
            _published_text(v, a, metric) for v, a in zip(
                table[f"published_{metric}"], table["published_ambiguity"], strict=True)]
    for backend in backends:
        shown[("seeds", backend)] = [cell_text(v, "seeds") for v in table[f"seeds_{backend}"]]
    for metric in ("test_accuracy", "test_loss"):
        for backend in backends:
            shown[(metric.replace("_", " "), backend)] = [
                _mean_std(m, s, metric) for m, s in zip(
                    table[f"{metric}_mean_{backend}"], table[f"{metric}_std_{backend}"],
                    strict=True)]
    for backend in backends:
        shown[("Δ vs published (pp)", backend)] = [
            cell_text(v, "delta_pp") for v in table[f"delta_pp_published_{backend}"]]
    for backend in backends:
        shown[("verdict", backend)] = table[f"verdict_{backend}"].tolist()
    if _one_class_rows(table).any():
        for backend in backends:
            shown[("seeds predicting one class", backend)] = [
                cell_text(v, "seeds") for v in table[f"{ONE_CLASS}_{backend}"]]
    if "verdict_frameworks" in table:
        pair = " − ".join(DELTA_PAIR)
        shown[(pair, "Δ (pp)")] = [cell_text(v, "delta_pp") for v in table["delta_pp_frameworks"]]
        shown[(pair, "tolerance (pp)")] = [cell_text(v, "tolerance_pp")
                                           for v in table["tolerance_pp_frameworks"]]
        shown[(pair, "verdict")] = table["verdict_frameworks"].tolist()
    for other in others_vs_reference(backends):
        pair = f"{other} − {DELTA_PAIR[1]}"
        shown[(pair, "Δ (pp)")] = [cell_text(v, "delta_pp")
                                   for v in table[versus_column("delta_pp", other)]]
        shown[(pair, "tolerance (pp)")] = [cell_text(v, "tolerance_pp")
                                           for v in table[versus_column("tolerance_pp", other)]]
        shown[(pair, "verdict")] = table[versus_column("verdict", other)].tolist()
    if (table["not_run"] != "").any():
        shown[(NOT_RUN, "")] = table["not_run"].tolist()
        shown[("command", "")] = table["command"].tolist()
    frame = pd.DataFrame(shown)
    frame.columns = pd.MultiIndex.from_tuples(list(shown))
    return frame


def _one_class_rows(table: pd.DataFrame) -> pd.Series:
    """Rows where some backend's model predicted one class for every test image, in a seed."""
    counts = table.filter(regex=f"^{ONE_CLASS}_")
    return (counts > 0).any(axis=1)


def reproduction_caption(table: pd.DataFrame) -> str:
    ambiguous = table[table["published_ambiguity"] != ""]
    notes = "".join(f" {spec}: {text}" for spec, text in zip(
        ambiguous["spec"], ambiguous["published_ambiguity"], strict=True))
    one_class = (" Seeds predicting one class: how many of the seeds' models gave every test "
                 "image the same class (they did not learn; their accuracy is that class's "
                 "share of the test set)." if _one_class_rows(table).any() else "")
    return (f"Test accuracy and loss: mean ± sample std over seeds. Verdict: {REPRODUCED} "
            f"(against the published accuracy) or {AGREE} (a Keras backend against PyTorch) "
            f"when the difference is within max({ACCURACY_FLOOR_PP:g} pp, {SPREAD_FACTOR:g} × "
            "seed std), "
            f"{DIFFERS} beyond; with one seed the {ACCURACY_FLOOR_PP:g} pp floor alone decides."
            f"{one_class} \"{NOT_COMPARABLE}\": the jobs trained fewer epochs or on fewer "
            "images than the notebook, so their accuracy is not held against its figure. "
            f"\"{NOT_RUN}\": a job the run planned has not trained yet (or it failed before: "
            "see Failed jobs), with the command that runs it."
            + (f" Published figures marked {AMBIGUOUS}, where the notebook's own records "
               f"disagree:{notes}" if notes else ""))
