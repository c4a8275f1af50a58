"""The report's answer in one table (tables/decision.csv), per study and over all studies:
does Keras reach PyTorch's accuracy, which trains faster, which predicts faster, and what ONNX
Runtime buys over each, each figure with its interval and verdict.

Accuracy (Keras − PyTorch, pp) comes from the study reproduction tables: models that did not
learn (a seed predicting one class for every test image) are listed apart and never counted;
specs that train the same model (aliases) are counted once. Speed comes from the protocol's
records (harness.speed): per comparison, the geometric mean over specs of each spec's paired
window ratios with its 95 % interval, judged against the run's measured A/A noise floor. A
run without those records says so rather than show a figure the protocol did not take.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import pandas as pd

from harness.measure.intervals import geometric_mean_interval
from harness.report.format import MISSING, NOISY_MARK
from harness.report.reproduction import AGREE, DIFFERS, is_within, tolerance_pp
from harness.report.speed_records import (
    Pair,
    alias_groups,
    counted_once,
    find,
    framework_name,
    judge,
    pairs_of,
    spec_ratios,
)
from harness.report.tables import DELTA_PAIR, ONE_CLASS

if TYPE_CHECKING:
    from harness.report.load import RunData

DECISION = "decision"  # the CSV's stem and the table's anchor
COLUMNS = ["study", "comparison", "estimate", "ci_low", "ci_high", "verdict", "n"]
ALL_STUDIES = "all studies"
NOT_TIMED = "not timed with the protocol: run `harness retime {run_dir}`"


@dataclass(frozen=True)
class Row:
    """One line of the decision table; `unit`, `pair` say how to show and find it."""

    study: str
    comparison: str
    estimate: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    verdict: str = ""
    n: int = 0
    unit: str = "ratio"  # ratio, pp, signed pp, count
    pair: Pair | None = None

    @property
    def label(self) -> str:
        """The row as Findings cite it (tables/findings.csv `rows`)."""
        return f"{self.study} | {self.comparison}"


def _names(run: RunData) -> tuple[str, str]:
    return tuple(framework_name(run, run.speed, label) for label in DELTA_PAIR)


def _did_not_learn(repro: pd.DataFrame) -> pd.Series:
    counts = repro.filter(regex=f"^{ONE_CLASS}_")
    return (counts > 0).any(axis=1)


def _not_learned_text(rows: pd.DataFrame) -> str:
    parts = []
    for _, row in rows.iterrows():
        backends = [f"{b} {int(row[f'{ONE_CLASS}_{b}'])} of {int(row[f'seeds_{b}'])} seed(s)"
                    for b in DELTA_PAIR if row.get(f"{ONE_CLASS}_{b}", 0) > 0]
        parts.append(f"{row['spec']} ({', '.join(backends)})")
    return "; ".join(parts)


def _counted(repro: pd.DataFrame, aliases: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """Rows with a Keras − PyTorch difference, aliases once (sweep points never alias)."""
    rows = repro[repro["delta_pp_frameworks"].notna()]
    keys = [s if p == "" else f"{s} [{p}]" for s, p in zip(rows["spec"], rows["point"],
                                                         strict=True)]
    kept, dropped = counted_once(keys, aliases)
    return rows[[k in kept for k in keys]], dropped


def accuracy_rows(study: str, repro: pd.DataFrame, aliases: dict[str, str],
                  names: tuple[str, str]) -> list[Row]:
    if "delta_pp_frameworks" not in repro:
        return []
    title = f"test accuracy, {names[0]} − {names[1]}"
    apart = repro[_did_not_learn(repro)]
    counted, dropped = _counted(repro[~_did_not_learn(repro)], aliases)
    rows: list[Row] = []
    if not counted.empty:
        deltas, spread = counted["delta_pp_frameworks"], counted["seed_std_pp"].dropna()
        largest = float(spread.max()) if not spread.empty else math.nan
        tolerance = tolerance_pp(largest)
        n = len(counted)
        for text, value, unit in ((f"{title}: mean |Δ| (pp)", deltas.abs().mean(), "pp"),
                                  (f"{title}: signed mean Δ (pp)", deltas.mean(), "signed pp")):
            rows.append(Row(study, text, float(value),
                            verdict=AGREE if is_within(value, tolerance) else DIFFERS,
                            n=n, unit=unit))
        rows.append(Row(study, "seed noise: largest std over seeds (pp)", largest,
                        verdict="" if spread.size else "one seed each: the 0.5 pp floor decides",
                        n=int(spread.size), unit="pp"))
        agree = int((counted["verdict_frameworks"] == AGREE).sum())
        rows.append(Row(study, f"{title}: agree within max(0.5 pp, 2 × seed std)",
                        float(agree), verdict=f"{agree} of {n} agree", n=n, unit="count"))
    if not apart.empty:
        rows.append(Row(study, "did not learn (one class for every test image): listed apart, "
                        "never counted", float(len(apart)), verdict=_not_learned_text(apart),
                        n=len(apart), unit="count"))
    if dropped:
        rows.append(Row(study, "aliases (same model as another spec): counted once",
                        float(len(dropped)), verdict=", ".join(
                            f"{name} = {aliases.get(name, name)}" for name in dropped),
                        n=len(dropped), unit="count"))
    return rows


def comparison_text(run: RunData, pair: Pair) -> str:
    a, b = (framework_name(run, run.speed, label) for label in (pair.a, pair.b))
    if pair.kind == "training":
        return f"training step time, {a} ÷ {b}"
    if pair.kind == "native":
        return f"native inference time, batch {pair.batch}, {a} ÷ {b}"
    return f"ONNX Runtime speed-up over {a}, batch {pair.batch} (native time ÷ ONNX Runtime time)"


def speed_row(run: RunData, study: str, specs: list[str], pair: Pair) -> Row:
    """Over `specs` (aliases once): the geometric mean of the pair's per-spec paired ratios,
    with its interval and verdict; quiet comparisons only when there are any."""
    text = comparison_text(run, pair)
    found = [c for name in specs if (record := run.speed.specs.get(name))
             and (c := find(record, pair)) is not None and spec_ratios(c).size]
    if not found:
        return Row(study, text, verdict=NOT_TIMED.format(run_dir=run.run_dir), pair=pair)
    quiet = [c for c in found if not c.busy]
    used, mark = (quiet, "") if quiet else (found, NOISY_MARK)
    estimate = geometric_mean_interval([spec_ratios(c) for c in used])
    return Row(study, text, estimate.estimate, estimate.ci_low, estimate.ci_high,
               judge(run.speed, pair, estimate) + mark, estimate.n, pair=pair)


def spec_study(run: RunData, spec: str) -> str:
    from harness.report.specs import spec_reference, study_of

    studies = run.jobs.loc[run.jobs["spec"] == spec, "study"].dropna()
    return str(studies.iloc[0]) if not studies.empty else study_of(spec_reference(None, spec))


def decision_rows(run: RunData, repros: dict[str, pd.DataFrame]) -> list[Row]:
    """Per study (in the order of `repros`, the reproduction tables) and over all studies."""
    aliases, names = alias_groups(run.speed), _names(run)
    pairs = pairs_of(run.speed)
    by_study: dict[str, list[str]] = {}
    for spec in run.speed.specs:
        by_study.setdefault(spec_study(run, spec), []).append(spec)
    rows: list[Row] = []
    groups = [*repros.items(), (ALL_STUDIES, _all_rows(repros))]
    for study, repro in groups:
        rows += accuracy_rows(study, repro, aliases, names)
        specs = list(run.speed.specs) if study == ALL_STUDIES else by_study.get(study, [])
        if specs or study == ALL_STUDIES:
            kept, _ = counted_once(specs, aliases)
            rows += [speed_row(run, study, kept, pair) for pair in pairs]
        elif run.speed.specs:  # other studies were timed, this one not
            rows.append(Row(study, "speed: no spec of this study has a speed record",
                            verdict=NOT_TIMED.format(run_dir=run.run_dir)))
    return rows


def _all_rows(repros: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frames = [r for r in repros.values() if not r.empty]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).drop_duplicates(["spec", "point"])


def decision_frame(rows: list[Row]) -> pd.DataFrame:
    """tables/decision.csv: exactly COLUMNS (empty intervals where a row has none)."""
    frame = pd.DataFrame([{k: v for k, v in asdict(r).items() if k in COLUMNS} for r in rows],
                         columns=COLUMNS)
    return frame.astype({"n": int})


def _estimate_text(row: Row) -> str:
    if math.isnan(row.estimate):
        return MISSING
    if row.unit == "count":
        return f"{int(row.estimate)}"
    if row.unit in ("pp", "signed pp"):
        return f"{row.estimate:+.2f} pp" if row.unit == "signed pp" else f"{row.estimate:.2f} pp"
    if math.isnan(row.ci_low):
        return f"{row.estimate:.2f}×"
    return f"{row.estimate:.2f}× [{row.ci_low:.2f}–{row.ci_high:.2f}]"


def shown_decision(rows: list[Row]) -> pd.DataFrame:
    """The page's text: the study named once per group, ratios with their 95 % interval."""
    previous, shown = None, []
    for row in rows:
        shown.append({"study": "" if row.study == previous else row.study,
                      "comparison": row.comparison, "estimate [95 % interval]":
                      _estimate_text(row), "verdict": row.verdict or MISSING, "n": str(row.n)})
        previous = row.study
    return pd.DataFrame(shown, columns=["study", "comparison", "estimate [95 % interval]",
                                        "verdict", "n"])


def decision_intro(run: RunData) -> str:
    from harness.measure.intervals import floor_as_percent
    from harness.report.speed_records import floor

    if not run.speed.specs:
        timed = ("This run has no protocol speed records (RUN_DIR/speed/specs): its speed rows "
                 "say so and give none of the run's own single timings as a verdict. ")
    else:
        timed = (f"Speed: {len(run.speed.specs)} spec(s) timed with the protocol (interleaved "
                 "windows of fixed work); each figure is the geometric mean over specs of each "
                 "spec's median paired window ratio, with its 95 % bootstrap interval. A/A noise "
                 f"floor (the same configuration against itself): training "
                 f"{floor_as_percent(floor(run.speed, 'training'))}, inference "
                 f"{floor_as_percent(floor(run.speed, 'native'))}. ")
    return (
        "The answer first. Accuracy: Keras − PyTorch test accuracy in percentage points (pp), "
        "agree = within max(0.5 pp, 2 × seed std) as in the study tables; models that did not "
        "learn are listed apart and never counted; specs that train the same model (aliases) "
        f"count once. {timed}Verdict of a time ratio A ÷ B: slower = A takes longer, faster = "
        "A takes less, only when the interval excludes 1 and the ratio is further from 1 than "
        "the noise floor, else within noise; of an ONNX Runtime speed-up: faster = ONNX "
        f"Runtime is faster. n = specs counted. {NOISY_MARK.strip()}: every comparison of the "
        "row was timed on a busy machine (otherwise busy ones are left out).")
