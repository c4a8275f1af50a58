"""A study's speed table from the protocol's records (harness.speed), one row per spec: each
framework's steady epoch estimated from steps (steps per epoch × median step time, with its
95 % interval), the run's own whole-epoch time over that estimate (a cross-check: near 1 when
the run's epochs ran at the protocol's pace), and every comparison's ratio with its interval and
verdict against the A/A noise floor. Specs that train the same model name the one they are
counted as (`alias_of`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.measure.speed_records import Comparison, Estimate, SpecSpeed
from harness.report.format import MISSING, NOISY_MARK, NOISY_PREFIX, flag_set
from harness.report.speed_records import ORT, Pair, alias_groups, counted_once, judge
from harness.report.tables import KEYS

if TYPE_CHECKING:
    from harness.report.load import RunData

ALIAS_OF = "alias_of"
VERDICT = "_verdict"
LOW, HIGH = "_ci_low", "_ci_high"
PROTOCOL_CAPTION = (
    "Timed with the protocol (interleaved windows of fixed work, RUN_DIR/speed). Steady epoch "
    "estimate = steps per epoch × median step time, with its 95 % interval; run ÷ estimate = "
    "the run's own steady epoch (mean over seeds) over that estimate, a cross-check (near 1: "
    "the run's epochs ran at the protocol's pace). Ratios: median of the paired ratios of "
    "adjacent windows, 95 % bootstrap interval; verdict against the A/A noise floor (time "
    "ratio A ÷ B: slower = A takes longer; ONNX Runtime speed-up = native time ÷ ONNX Runtime "
    f"time: faster = ONNX Runtime is faster). {NOISY_MARK.strip()}: timed on a busy machine. "
    "alias of: the spec trains the same model as that one and is counted once, as it.")


def protocol_caption(run: RunData) -> str:
    """PROTOCOL_CAPTION with what each label ran as ("keras: Keras 3 on TensorFlow, ...")."""
    from harness.report.speed_records import framework_name

    labels = sorted({label for r in run.speed.specs.values() for label in r.backends})
    names = "; ".join(f"{label}: {framework_name(run, run.speed, label)}" for label in labels)
    caption = f"{PROTOCOL_CAPTION} Labels: {names}." if names else PROTOCOL_CAPTION
    other = other_machine(run)
    return f"{caption} {other}" if other else caption


def other_machine(run: RunData) -> str | None:
    """A warning when the run's own epochs were timed on another CPU than the protocol's:
    their ratio then compares two machines, not two ways of timing."""
    from harness.report.speed_records import machine_facts

    run_cpu = (run.environment.get("machine") or {}).get("cpu")
    protocol_cpu = machine_facts(run).get("cpu")
    if not run.speed.specs or not run_cpu or not protocol_cpu or run_cpu == protocol_cpu:
        return None
    return (f"The run's own epochs were timed on another machine ({run_cpu}) than the "
            f"protocol's ({protocol_cpu}): run ÷ estimate compares the two machines, not two "
            "ways of timing.")


def pair_of(comparison: Comparison) -> Pair:
    batch = None if comparison.kind == "training" else comparison.batch_size
    return Pair(comparison.kind, comparison.a, comparison.b, batch)


def column_stem(pair: Pair) -> str:
    """The CSV column of a comparison's ratio (its interval and verdict beside it)."""
    if pair.kind == "training":
        return f"protocol_step_ratio_{pair.a}_over_{pair.b}"
    if pair.kind == "native":
        return f"protocol_native_ratio_{pair.a}_over_{pair.b}_batch{pair.batch}"
    return f"protocol_ort_speedup_{pair.a}_batch{pair.batch}"


def pair_title(pair: Pair) -> str:
    if pair.kind == "training":
        return f"step time {pair.a} ÷ {pair.b}"
    if pair.kind == "native":
        return f"native inference {pair.a} ÷ {pair.b}, batch {pair.batch}"
    return f"{ORT} speed-up over {pair.a}, batch {pair.batch}"


def _estimate(row: dict[str, Any], stem: str, estimate: Estimate) -> None:
    row.update({stem: estimate.estimate, stem + LOW: estimate.ci_low,
                stem + HIGH: estimate.ci_high})


def _row(run: RunData, record: SpecSpeed, framework: pd.DataFrame, alias: str) -> dict:
    row: dict[str, Any] = {"spec": record.spec, "point": "", ALIAS_OF: alias}
    ran = framework[(framework["spec"] == record.spec) & (framework["point"] == "")]
    for label, estimate in sorted(record.epoch_estimate.items()):
        _estimate(row, f"epoch_estimate_s_{label}", estimate)
        column = f"steady_epoch_s_{label}"
        own = float(ran[column].iloc[0]) if column in ran and not ran.empty else math.nan
        row[f"run_over_estimate_{label}"] = own / estimate.estimate
    for comparison in record.comparisons:
        if comparison.aa:
            continue
        pair = pair_of(comparison)
        stem = column_stem(pair)
        _estimate(row, stem, comparison.ratio)
        row[stem + VERDICT] = judge(run.speed, pair, comparison.ratio)
        row[NOISY_PREFIX + stem] = comparison.busy
    return row


def protocol_table(run: RunData, keys: list[tuple[str, str]], framework: pd.DataFrame
                   ) -> pd.DataFrame:
    """One row per spec of `keys` with a speed record (sweep points have none), and one naming
    the timed spec for each alias that was not timed itself (the same model)."""
    aliases = alias_groups(run.speed)
    names = [spec for spec, point in keys if point == "" and spec in run.speed.specs]
    kept, _ = counted_once(names, aliases)
    rows = [_row(run, run.speed.specs[name], framework,
                 "" if name in kept else aliases.get(name, "")) for name in names]
    timed_as = {alias: r.spec for r in run.speed.specs.values() for alias in r.aliases}
    rows += [{"spec": spec, "point": "", ALIAS_OF: timed_as[spec]} for spec, point in keys
             if point == "" and spec not in run.speed.specs and spec in timed_as]
    return pd.DataFrame(rows, columns=[*KEYS, ALIAS_OF] if not rows else None)


def _interval_text(row: pd.Series, stem: str, unit: str = "×") -> str:
    value = row.get(stem)
    if value is None or pd.isna(value):
        return MISSING
    digits = "{:.3f}" if unit == " s" else "{:.2f}"
    text = (f"{digits.format(value)}{unit} [{digits.format(row[stem + LOW])}–"
            f"{digits.format(row[stem + HIGH])}]")
    return text + (NOISY_MARK if flag_set(row.get(NOISY_PREFIX + stem)) else "")


def _plain(value: Any, text: str) -> str:
    return MISSING if value is None or pd.isna(value) else text


def shown_protocol(table: pd.DataFrame, labels: list[str], pairs: list[Pair]) -> pd.DataFrame:
    """The page's text: intervals in one cell each, two header rows."""
    shown: dict[tuple[str, str], list[str]] = {("spec", ""): table["spec"].tolist()}
    if table[ALIAS_OF].fillna("").ne("").any():
        shown[("alias of", "")] = table[ALIAS_OF].fillna("").tolist()
    for label in labels:
        shown[("steady epoch estimate [95 %]", label)] = [
            _interval_text(row, f"epoch_estimate_s_{label}", " s") for _, row in table.iterrows()]
    for label in labels:
        column = f"run_over_estimate_{label}"
        shown[("run's steady epoch ÷ estimate", label)] = [
            _plain(v, f"{v:.2f}×") for v in table.get(column, [math.nan] * len(table))]
    for pair in pairs:
        stem = column_stem(pair)
        if stem not in table:
            continue
        shown[(pair_title(pair), "ratio [95 %]")] = [_interval_text(row, stem)
                                                      for _, row in table.iterrows()]
        shown[(pair_title(pair), "verdict")] = [_plain(v, str(v))
                                                for v in table[stem + VERDICT]]
    frame = pd.DataFrame(shown)
    frame.columns = pd.MultiIndex.from_tuples(list(shown))
    return frame


def labels_of(run: RunData) -> list[str]:
    """The training labels the records estimate epochs for, Keras before PyTorch."""
    from harness.report.tables import DELTA_PAIR

    found = {label for r in run.speed.specs.values() for label in r.epoch_estimate}
    return [b for b in DELTA_PAIR if b in found] + sorted(found - set(DELTA_PAIR))
