"""The report's building blocks: a section holds tables (a CSV and what the page shows), plots
(a PNG) and bullet lists; every renderer (HTML, Markdown) walks them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from harness.report.findings import Bullets


@dataclass
class Table:
    name: str  # CSV file stem
    frame: pd.DataFrame  # what the CSV holds
    shown: pd.DataFrame  # the text the page shows
    caption: str = ""


@dataclass
class Plot:
    name: str  # PNG file stem
    png: bytes
    caption: str


@dataclass
class Section:
    title: str
    anchor: str
    intro: str = ""
    items: list[Table | Plot | Bullets] = field(default_factory=list)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "x"
