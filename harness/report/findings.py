"""The report's answer, before any table: per study, generated from the study's tables.

Does Keras reach PyTorch's accuracy (within seed noise)? Which framework trains faster, by how
much? What does ONNX Runtime buy over each framework at batch 1 and 32, and which runtime x
variant (graph optimisation, int8, float16, compiled framework) is best within the accuracy
gate? Did the models reach the accuracies their notebooks published, and did any not learn
at all? Every number is a `Figure`: its text, its value and where it comes from (table,
column, statistic over which rows), so the page links it to its table and tables/findings.csv
lets anyone check it against that table.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.report.figures import (
    Bullets,
    Figure,
    Sentence,
    backend_name,
    figures_frame,
    row_label,
    spec_word,
)
from harness.report.format import NOISY_MARK, NOISY_PREFIX, cell_text, flag_set
from harness.report.reproduction import (
    ACCURACY_FLOOR_PP,
    AGREE,
    REPRODUCED,
    is_within,
    tolerance_pp,
    versus_column,
)
from harness.report.speed import EPOCH_RATIO, epoch_ratio_column, speedup_column
from harness.report.speed_records import counted_once
from harness.report.tables import DELTA_PAIR, ONE_CLASS, others_vs_reference

__all__ = ["Bullets", "Figure", "Sentence", "figures_frame", "row_label", "study_findings"]
FINDINGS_BATCH_SIZES = (1, 32)
VARIANT_STUDIES = "variants_studies"  # harness.report.variants.study_table: its CSV stem


class _Study:
    """Figures over one study's tables."""

    def __init__(self, repro_name: str, repro: pd.DataFrame, speed_name: str,
                 speed: pd.DataFrame, aliases: dict[str, str] | None = None) -> None:
        self.tables = {repro_name: repro.assign(label=[row_label(s, p) for s, p in zip(
                           repro["spec"], repro["point"], strict=True)]),
                       speed_name: speed.assign(label=[row_label(s, p) for s, p in zip(
                           speed["spec"], speed["point"], strict=True)])}
        self.repro, self.speed = repro_name, speed_name
        self.aliases = aliases or {}
        # specs that train the same model as another: counted once, as that one
        self.dropped = counted_once(repro.loc[repro["point"] == "", "spec"], self.aliases)[1]

    def once(self, rows: pd.DataFrame, learned: bool = False) -> pd.DataFrame:
        """`rows` with each group of aliases (the same model) counted once; `learned`: and
        without the models that did not learn (one class for every test image, in a seed)."""
        rows = rows[~rows["label"].isin(self.dropped)]
        if not learned:
            return rows
        return rows[~(rows.filter(regex=f"^{ONE_CLASS}_") > 0).any(axis=1)]

    def figure(self, table: str, rows: pd.DataFrame, column: str, statistic: str,
               match: str = "", suffix: str = "") -> Figure:
        values = rows[column]
        value = {"value": lambda: values.iloc[0], "mean": values.mean,
                 "median": values.median, "min": values.min, "max": values.max,
                 "count": lambda: float((values == match).sum()),
                 "rows": lambda: float(len(rows))}[statistic]()
        text = (f"{int(value)}" if statistic in ("count", "rows")
                else cell_text(float(value), column))
        return Figure(text + suffix, float(value), table, column, statistic,
                      tuple(rows["label"]), match)


def _listed(names: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def _coverage(study: _Study, backends: list[str]) -> Sentence:
    repro = study.tables[study.repro]
    sentence: Sentence = [
        study.figure(study.repro, repro, "not_run", "count", match=""), " of ",
        study.figure(study.repro, repro, "spec", "rows"), spec_word(repro),
        f" finished in {_listed([backend_name(b) for b in backends])}"]
    missing = repro[repro["not_run"] != ""]
    if not missing.empty:
        sentence.append("; not run yet (the table gives the command): " + ", ".join(
            f"{label} ({backends_missing})" for label, backends_missing in zip(
                missing["label"], missing["not_run"], strict=True)))
    return [*sentence, "."]


def _frameworks(study: _Study) -> Sentence | None:
    repro = study.tables[study.repro]
    if "delta_pp_frameworks" not in repro:
        return None
    compared = study.once(repro[repro["delta_pp_frameworks"].notna()])
    rows = study.once(compared, learned=True)
    if rows.empty:
        return None
    apart = sorted(set(compared["label"]) - set(rows["label"]))
    first, second = (backend_name(b) for b in DELTA_PAIR)
    fig = study.figure
    mean = fig(study.repro, rows, "delta_pp_frameworks", "mean", suffix=" pp")
    sentence: Sentence = [
        f"Test accuracy, {first} − {second}: ", mean, " on average (from ",
        fig(study.repro, rows, "delta_pp_frameworks", "min"), " to ",
        fig(study.repro, rows, "delta_pp_frameworks", "max", suffix=" pp"), " over ",
        fig(study.repro, rows, "spec", "rows"), spec_word(rows), "); ",
        fig(study.repro, rows, "verdict_frameworks", "count", match=AGREE), " of ",
        fig(study.repro, rows, "spec", "rows"),
        f" agree within max({ACCURACY_FLOOR_PP:g} pp, 2 × seed std)"]
    left_out = [f" Not counted, as it did not learn: {', '.join(apart)}."] if apart else []
    spread = rows[rows["seed_std_pp"].notna()]
    if spread.empty:
        return [*sentence, f" (one seed each: no seed spread, the {ACCURACY_FLOOR_PP:g} pp "
                "floor decides).", *left_out]
    largest = fig(study.repro, spread, "seed_std_pp", "max", suffix=" pp")
    within = is_within(mean.value, tolerance_pp(largest.value))
    return [*sentence, "; the largest seed std is ", largest, ", so the mean difference is ",
            "within" if within else "beyond", " the seed spread.", *left_out]


def _one_class(study: _Study, backends: list[str]) -> Sentence | None:
    """The specs whose model, in some seed and backend, gave every test image one class: they
    did not learn, whatever the accuracy verdicts say."""
    repro = study.tables[study.repro]
    sentence: Sentence = []
    for _, row in repro.iterrows():
        one = repro[repro["label"] == row["label"]]
        parts: Sentence = []
        for backend in backends:
            count = f"{ONE_CLASS}_{backend}"
            if count in one and row[count] > 0:
                parts += [", " if parts else "", f"{backend_name(backend)} ",
                          study.figure(study.repro, one, count, "value"), " of ",
                          study.figure(study.repro, one, f"seeds_{backend}", "value"),
                          " seed" if row[f"seeds_{backend}"] == 1 else " seeds"]
        if parts:
            sentence += ["; " if sentence else "", f"{row['label']} (", *parts, ")"]
    if not sentence:
        return None
    return ["Did not learn (every test image given the same class, so the accuracy is that "
            "class's share of the test set): ", *sentence, "."]


def _training_speed(study: _Study) -> Sentence | None:
    speed = study.tables[study.speed]
    if EPOCH_RATIO not in speed:
        return None
    timed = study.once(speed[speed[EPOCH_RATIO].notna()])
    if timed.empty:
        return ["Training speed: no spec has a steady epoch time in both frameworks (a run of "
                "one epoch has none)."] if not speed.empty else None
    busy = timed[NOISY_PREFIX + EPOCH_RATIO].eq(True)
    quiet, mark = timed[~busy], ""
    if quiet.empty:
        quiet, mark = timed, NOISY_MARK  # only busy figures: shown, and marked so
    fig = study.figure
    median = fig(study.speed, quiet, EPOCH_RATIO, "median", suffix=mark)
    first, second = (backend_name(b) for b in DELTA_PAIR)
    sentence: Sentence = [
        f"Training: a steady {first} epoch takes ", median, f" the time of a {second} one "
        "(median over ", fig(study.speed, quiet, "spec", "rows"), spec_word(quiet), ", from ",
        fig(study.speed, quiet, EPOCH_RATIO, "min", suffix=mark), " to ",
        fig(study.speed, quiet, EPOCH_RATIO, "max", suffix=mark),
        "): one epoch per job, no interval, so no verdict on which trains faster"]
    if mark:
        sentence.append(f" — every one timed on a busy machine ({NOISY_MARK.strip()})")
    elif busy.any():
        sentence += ["; ", fig(study.speed, timed[busy], "spec", "rows"), spec_word(timed[busy]),
                     f" timed on a busy machine left out ({NOISY_MARK.strip()} in the table)"]
    return [*sentence, "."]


def _versus_reference(study: _Study, backend: str, timed_by_protocol: bool = False
                      ) -> Sentence | None:
    """A backend beyond Keras and PyTorch (Keras on JAX, on PyTorch) against PyTorch: its
    accuracy difference and agreement within seed noise, and its steady epoch ratio (left to
    the protocol's sentences when `timed_by_protocol`)."""
    repro, speed, fig = study.tables[study.repro], study.tables[study.speed], study.figure
    delta, agreed = versus_column("delta_pp", backend), versus_column("verdict", backend)
    name, reference = backend_name(backend), backend_name(DELTA_PAIR[1])
    sentence: Sentence = []
    rows = study.once(repro[repro[delta].notna()] if delta in repro else repro.iloc[0:0],
                      learned=True)
    if not rows.empty:
        sentence += [f"{name} − {reference}: test accuracy ",
                     fig(study.repro, rows, delta, "mean", suffix=" pp"), " on average over ",
                     fig(study.repro, rows, "spec", "rows"), spec_word(rows), ", ",
                     fig(study.repro, rows, agreed, "count", match=AGREE), " of ",
                     fig(study.repro, rows, "spec", "rows"),
                     f" agree within max({ACCURACY_FLOOR_PP:g} pp, 2 × seed std)"]
    ratio = epoch_ratio_column(backend)
    timed = (study.once(speed[speed[ratio].notna()]) if ratio in speed and not timed_by_protocol
             else speed.iloc[0:0])
    quiet = timed[~timed[NOISY_PREFIX + ratio].eq(True)] if not timed.empty else timed
    mark = "" if not quiet.empty else NOISY_MARK
    quiet = quiet if not quiet.empty else timed  # only busy figures: shown, and marked so
    if not quiet.empty:
        sentence += ["; " if sentence else f"{name}: ", f"a steady {name} epoch takes ",
                     fig(study.speed, quiet, ratio, "median", suffix=mark),
                     f" the time of a {reference} one (median over ",
                     fig(study.speed, quiet, "spec", "rows"), spec_word(quiet), ")"]
    return [*sentence, "."] if sentence else None


def _onnx_runtime(study: _Study, backends: list[str]) -> Sentence | None:
    speed = study.tables[study.speed]
    parts: Sentence = []
    for backend in backends:
        figures: Sentence = []
        for batch in FINDINGS_BATCH_SIZES:
            column = speedup_column(backend, batch)
            if column not in speed:
                continue
            quiet = study.once(speed[speed[column].notna()
                                     & ~speed[NOISY_PREFIX + column].eq(True)])
            if quiet.empty:
                continue
            figures += [", " if figures else "", study.figure(study.speed, quiet, column,
                                                              "median"), f" at batch {batch}"]
        if figures:
            parts += ["; " if parts else "", f"over {backend_name(backend)} ", *figures]
    if not parts:
        return None
    return ["ONNX Runtime on the CPU (native p50 / ONNX Runtime p50, median over the specs "
            "timed on a quiet machine): ", *parts, "."]


def _published(study: _Study, backends: list[str]) -> list[Sentence]:
    repro = study.tables[study.repro]
    compared = repro[repro["published_test_accuracy"].notna() & (repro["not_run"] != ", ".join(
        backends))]
    sentences: list[Sentence] = []
    for _, row in compared.iterrows():
        one = compared[compared["label"] == row["label"]]
        ambiguous = " (ambiguous)" if row["published_ambiguity"] else ""
        sentence: Sentence = [f"{row['label']}: published ", study.figure(
            study.repro, one, "published_test_accuracy", "value", suffix=ambiguous), ";"]
        verdicts = {}
        for backend in backends:
            column = f"delta_pp_published_{backend}"
            if math.isnan(row[column]):
                continue
            delta = study.figure(study.repro, one, column, "value", suffix=" pp")
            # the tolerance the verdict used: max(0.5 pp, 2 x seed std)
            tolerance = row[f"tolerance_pp_{backend}"]
            within = is_within(delta.value, tolerance)
            sentence += ["," if verdicts else "", f" {backend_name(backend)} ", delta,
                         f" ({'within' if within else 'beyond'} ±{tolerance:.3g} pp)"]
            verdicts[backend_name(backend)] = row[f"verdict_{backend}"]
        if verdicts:
            same = len(set(verdicts.values())) == 1
            sentence.append("; verdict: " + (next(iter(verdicts.values())) if same else ", ".join(
                f"{backend} {word}" for backend, word in verdicts.items())) + ".")
            sentences.append(sentence)
    missing = repro[repro["published_test_accuracy"].isna()]
    if not missing.empty:
        sentences.append(["No published test accuracy: " + ", ".join(missing["label"]) + "."])
    return sentences


def _reproduced(study: _Study, backends: list[str]) -> Sentence | None:
    repro = study.tables[study.repro]
    parts: Sentence = []
    for backend in backends:
        rows = repro[repro["published_test_accuracy"].notna()
                     & repro[f"delta_pp_published_{backend}"].notna()]
        if not rows.empty:
            parts += ["; " if parts else "", f"{backend_name(backend)} ",
                      study.figure(study.repro, rows, f"verdict_{backend}", "count",
                                   match=REPRODUCED), " of ",
                      study.figure(study.repro, rows, "spec", "rows")]
    if not parts:
        return None
    return ["Published test accuracies reproduced (within max(0.5 pp, 2 × seed std)): ",
            *parts, "."]


def _runtime_text(row: pd.Series) -> str:
    """A runtime x variant as the findings name it."""
    if row["runtime"] == "onnxruntime":
        return (f"ONNX Runtime {row['variant']} of the {backend_name(row['backend'])} export "
                f"({row['provider']}, {row['mode']})")
    return f"{backend_name(row['backend'])} {row['variant']} ({row['provider']})"


def _variant_figure(row: pd.Series, column: str, suffix: str = "") -> Figure:
    """One cell of the study's row in VARIANT_STUDIES; counts as whole numbers."""
    value = float(row[column])
    text = cell_text(value, column) if column.startswith("median") else f"{int(value)}"
    return Figure(text + suffix, value, VARIANT_STUDIES, column, "value", (row["label"],))


def _best_variants(variants: pd.DataFrame | None) -> Sentence | None:
    """Per batch size, the runtime x variant of the study's `variants_studies` rows that is
    `best`: within the accuracy gate in every spec, the fastest in the most."""
    if variants is None or variants.empty:
        return None
    parts: Sentence = []
    for batch in FINDINGS_BATCH_SIZES:
        rows = variants[variants["batch_size"] == batch]
        if rows.empty:
            continue
        parts.append("; " if parts else "")
        chosen = rows[rows["best"].eq(True)]
        if chosen.empty:
            parts.append(f"at batch {batch} none passes the gate in every spec")
            continue
        row = chosen.iloc[0]
        busy = NOISY_MARK if flag_set(row[f"{NOISY_PREFIX}median_speedup_vs_eager"]) else ""
        parts += [f"at batch {batch}, {_runtime_text(row)}: the fastest in ",
                  _variant_figure(row, "fastest"), " of ", _variant_figure(row, "specs"),
                  " spec" if row["specs"] == 1 else " specs", ", ",
                  _variant_figure(row, "median_speedup_vs_eager", busy),
                  " the eager framework's speed (median)"]
    if not parts:
        return None
    return ["Best within the accuracy gate (passing it in every spec of the study, the "
            "fastest in the most): ", *parts, "."]


def _aliases(study: _Study) -> Sentence | None:
    if not study.dropped:
        return None
    return ["Aliases (the same model as another spec: same layers, optimizer, batch, epochs, "
            "seed and data), counted once: " + ", ".join(
                f"{spec} = {study.aliases.get(spec, spec)}" for spec in study.dropped) + "."]


def study_findings(study: str, repro_name: str, repro: pd.DataFrame, speed_name: str,
                   speed: pd.DataFrame, backends: list[str],
                   variants: pd.DataFrame | None = None, *,
                   aliases: dict[str, str] | None = None,
                   protocol: list[Sentence] | None = None,
                   speed_note: Sentence | None = None) -> Bullets:
    """The findings of one study from its reproduction and speed tables, and its rows of
    VARIANT_STUDIES when the run timed variants. `protocol`: the speed sentences with
    intervals and verdicts (harness.report.speed_findings), in place of the run's own single
    timings, else `speed_note` after those; `aliases`: spec -> the spec its model counts as."""
    data = _Study(repro_name, repro, speed_name, speed, aliases)
    timed = protocol is not None
    speed_sentences = protocol if timed else [_training_speed(data)]
    sentences = [_coverage(data, backends), _aliases(data), _frameworks(data),
                 _one_class(data, backends), *speed_sentences,
                 *(_versus_reference(data, other, timed)
                   for other in others_vs_reference(backends)),
                 None if timed else _onnx_runtime(data, backends), None if timed else speed_note,
                 _best_variants(variants),
                 _reproduced(data, backends), *_published(data, backends)]
    return Bullets(f"Study: {study}", [s for s in sentences if s])
