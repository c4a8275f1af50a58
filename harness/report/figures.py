"""The findings' building blocks: a `Figure` (a number with the table, column, statistic and
rows it comes from), sentences of text and figures, `Bullets` (a study's findings) and
tables/findings.csv, which lists every figure so anyone can check it against its table."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness.backends import backend_label


@dataclass(frozen=True)
class Figure:
    """A number in the findings: `statistic` of `column` over `rows` (row labels) of `table`:
    `value` (the one row's cell), `mean`, `median`, `min`, `max`, `count` (rows whose column
    equals `match`) or `rows` (how many rows)."""

    text: str
    value: float
    table: str  # CSV stem; the page's anchor is t-<table>
    column: str
    statistic: str
    rows: tuple[str, ...]
    match: str = ""


Sentence = list[str | Figure]


@dataclass
class Bullets:
    """A heading and sentences: the findings of one study (or, `code`, commands)."""

    heading: str
    sentences: list[Sentence] = field(default_factory=list)
    code: bool = False

    def figures(self) -> list[Figure]:
        return [part for sentence in self.sentences for part in sentence
                if isinstance(part, Figure)]


def spec_word(rows: pd.DataFrame) -> str:
    """' spec' or ' specs' after a count of `rows`."""
    return " spec" if len(rows) == 1 else " specs"


def row_label(spec: str, point: str) -> str:
    return f"{spec} [{point}]" if point else spec


def backend_name(backend: str) -> str:
    return backend_label(backend)


def figures_frame(findings: list[Bullets]) -> pd.DataFrame:
    """Every figure with where it comes from: tables/findings.csv."""
    return pd.DataFrame([{"study": bullets.heading.removeprefix("Study: "), "text": f.text,
                          "value": f.value, "table": f.table, "column": f.column,
                          "statistic": f.statistic, "match": f.match, "rows": "; ".join(f.rows)}
                         for bullets in findings for f in bullets.figures()],
                        columns=["study", "text", "value", "table", "column", "statistic",
                                 "match", "rows"])
