"""The speed sentences of a study's Findings when the run has the protocol's records: every
figure with its 95 % interval and verdict against the A/A noise floor, cited from the decision
table (the study's geometric means) and the study's speed table (how many specs each verdict
got). Without records, the findings say that their speed figures are single timings.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.measure.intervals import floor_as_percent
from harness.measure.speed_load import SpeedData
from harness.report.decision import DECISION, Row
from harness.report.figures import Figure, Sentence, row_label
from harness.report.speed_protocol import ALIAS_OF, VERDICT, column_stem
from harness.report.speed_records import ORT, floor


def _row_figure(row: Row, column: str = "estimate") -> Figure:
    if column == "n":
        return Figure(str(row.n), float(row.n), DECISION, "n", "value", (row.label,))
    text = f"{row.estimate:.2f}× [{row.ci_low:.2f}–{row.ci_high:.2f}]"
    return Figure(text, row.estimate, DECISION, "estimate", "value", (row.label,))


def _meaning(row: Row, subject: str) -> str:
    """The verdict in words: 'verdict slower (X takes longer)', or within noise."""
    for word, meaning in (("slower", "takes longer"), ("faster", "takes less time")):
        if row.verdict.startswith(word):
            return f"verdict {row.verdict} ({subject} {meaning})"
    return f"verdict {row.verdict}"


def _per_spec(row: Row, speed_name: str, speed: pd.DataFrame) -> Sentence:
    """'; per spec: 2 slower, 1 within noise' from the study's speed table (aliases once)."""
    column = column_stem(row.pair) + VERDICT
    if column not in speed:
        return []
    rows = speed[speed[column].notna() & speed[ALIAS_OF].fillna("").eq("")]
    parts: Sentence = []
    for verdict in sorted(rows[column].unique()):
        count = float((rows[column] == verdict).sum())
        parts += [", " if parts else "; per spec: ",
                  Figure(str(int(count)), count, speed_name, column, "count",
                         tuple(rows["label"]), verdict), f" {verdict}"]
    return parts


def _timed(rows: list[Row], kind: str) -> list[Row]:
    return [r for r in rows if r.pair is not None and r.pair.kind == kind
            and not math.isnan(r.estimate)]


def _training(rows: list[Row], names: dict[str, str], speed_name: str,
              speed: pd.DataFrame, data: SpeedData) -> list[Sentence]:
    sentences = []
    for row in _timed(rows, "training"):
        a, b = names.get(row.pair.a, row.pair.a), names.get(row.pair.b, row.pair.b)
        sentences.append([
            f"Training step time (protocol: interleaved windows of fixed steps), {a} ÷ {b}: ",
            _row_figure(row), " (geometric mean over ", _row_figure(row, "n"),
            " spec(s), 95 % interval; training A/A noise floor "
            f"{floor_as_percent(floor(data, 'training'))}): {_meaning(row, a)}",
            *_per_spec(row, speed_name, speed), "."])
    return sentences


def _latency(rows: list[Row], names: dict[str, str], speed_name: str, speed: pd.DataFrame,
             data: SpeedData) -> list[Sentence]:
    sentences = []
    native = _timed(rows, "native")
    if native:
        parts: Sentence = []
        for row in native:
            a = names.get(row.pair.a, row.pair.a)
            parts += ["; " if parts else "", f"batch {row.pair.batch}: ", _row_figure(row),
                      " over ", _row_figure(row, "n"), f" spec(s), {_meaning(row, a)}",
                      *_per_spec(row, speed_name, speed)]
        first = native[0].pair
        sentences.append([
            f"Native inference time, {names.get(first.a, first.a)} ÷ "
            f"{names.get(first.b, first.b)} (geometric mean, 95 % interval; latency A/A noise "
            f"floor {floor_as_percent(floor(data, 'native'))}): ", *parts, "."])
    ort = _timed(rows, ORT)
    if ort:
        parts = []
        for row in ort:
            parts += ["; " if parts else "", f"over {names.get(row.pair.a, row.pair.a)} at "
                      f"batch {row.pair.batch} ", _row_figure(row), " (",
                      _row_figure(row, "n"), f" spec(s)): {_meaning(row, 'ONNX Runtime')}",
                      *_per_spec(row, speed_name, speed)]
        sentences.append(["ONNX Runtime speed-up on the CPU (native time ÷ ONNX Runtime time, "
                          "geometric mean, 95 % interval): ", *parts, "."])
    return sentences


def protocol_sentences(study: str, rows: list[Row], names: dict[str, str], speed_name: str,
                       speed: pd.DataFrame, data: SpeedData, run_dir: str) -> list[Sentence]:
    """The study's speed findings from its decision rows; a plain "not timed" sentence when
    none of its specs was timed with the protocol."""
    mine = [r for r in rows if r.study == study and r.pair is not None]
    if not any(not math.isnan(r.estimate) for r in mine):
        return [["Speed: not timed with the protocol (no speed record of this study's specs): "
                  f"run `harness retime {run_dir}`."]]
    speed = speed.assign(label=[row_label(s, p) for s, p in zip(speed["spec"], speed["point"],
                                                                strict=True)])
    return [*_training(mine, names, speed_name, speed, data),
            *_latency(mine, names, speed_name, speed, data)]


def untimed_note(run_dir: str) -> Sentence:
    """For a run without protocol records: what its speed figures are, and how to do better."""
    return ["Speed figures above are the run's own single timings (one steady epoch or one "
            "p50 per job), with no interval and no measured noise floor: not timed with the "
            f"protocol (run `harness retime {run_dir}`)."]
