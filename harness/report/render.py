"""Write a run's report: report.md, a self-contained report.html, tables as CSV, plots as PNG.

The HTML needs nothing else: CSS is inline and every plot is a base64 `data:` image, so the one
file can be mailed, attached to a CI run or opened offline.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from harness.measure.environment import utc_now
from harness.records import folders
from harness.report.benchmarks import load_benchmark_json
from harness.report.blocks import Plot, Section, Table
from harness.report.findings import Bullets, Figure, figures_frame
from harness.report.format import markdown_table
from harness.report.load import load_run
from harness.report.sections import build_sections, load_warnings

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FINDINGS_CSV = "findings"
TABLES_DIR = "tables"
PLOTS_DIR = "plots"
NUMBER = re.compile(r"^([+-]?[\d,]*\.?\d+(e[+-]?\d+)?×?( ± [\d,.e+-]+)?( †)?|–)$")
SCROLL_ROWS = 25  # longer tables scroll inside their own box, headers kept in view

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1400px; margin: 0 auto; padding: 1.5em 2em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.meta, .caption, .intro { color: #555; font-size: 0.9em; }
p.caption { margin: 0.3em 0 1.2em; }
nav ul { columns: 3; font-size: 0.9em; padding-left: 1.2em; }
.table-wrap { display: inline-block; max-width: 100%; overflow: auto; margin: 0.5em 0;
              border: 1px solid #e3e3e3; vertical-align: top; }
.table-wrap.long { max-height: 34em; }
table.data { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
table.data th, table.data td { padding: 3px 8px; border-bottom: 1px solid #eee;
                               text-align: left; vertical-align: top; }
table.data thead { position: sticky; top: 0; }
table.data td:first-child { min-width: 8em; max-width: 16em; overflow-wrap: anywhere; }
table.data th { background: #f4f6f8; font-weight: 600; text-align: center; }
table.data tbody tr:nth-child(even) { background: #fafbfc; }
table.data tbody tr:hover { background: #eef5ff; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
ul.notes { font-size: 0.85em; color: #555; }
p.warning { background: #fff4e5; border-left: 4px solid #e8a33d; padding: 0.5em 0.8em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.3em; }
ul.findings li { margin: 0.2em 0; }
ul.findings a { color: inherit; text-decoration: underline dotted; }
code { font-size: 0.9em; background: #f4f6f8; padding: 0.1em 0.3em; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2, h3, .intro { break-after: avoid; }
  .table-wrap, .table-wrap.long { display: block; max-height: none; overflow: visible;
                                  border: none; }
  table.data { font-size: 7pt; width: 100%; table-layout: auto; }
  table.data th, table.data td { padding: 1px 3px; overflow-wrap: anywhere; }
  table.data thead { position: static; display: table-header-group; }
  table.data tr, figure, figure img { break-inside: avoid; }
  table.data tbody tr:nth-child(even) { background: #f4f4f4; }
  figure img { max-height: 18cm; border: none; }  /* one landscape page */
  a { color: inherit; text-decoration: none; }
}
"""


def _numeric_columns(shown: pd.DataFrame) -> list[int]:
    """Positions of columns whose every cell reads as a number (right-aligned on the page)."""
    return [i for i in range(shown.shape[1])
            if all(NUMBER.match(str(v)) for v in shown.iloc[:, i])]


def table_anchor(name: str) -> str:
    """The id a table has on the page (the findings link to it)."""
    return f"t-{name}"


def _html_table(table: Table) -> str:
    shown = table.shown
    if shown.empty:
        body = f'<p id="{table_anchor(table.name)}"><em>(none)</em></p>'
    else:
        body = shown.to_html(index=False, border=0, classes="data", escape=True,
                             table_id=table_anchor(table.name))
        numeric = ", ".join(f"#{table_anchor(table.name)} td:nth-child({i + 1})"
                            for i in _numeric_columns(shown))
        if numeric:
            body = f"<style>{numeric} {{ text-align: right }}</style>{body}"
    wrap = "table-wrap long" if len(shown) > SCROLL_ROWS else "table-wrap"
    caption = f'<p class="caption">{html.escape(table.caption)}</p>' if table.caption else ""
    csv = f'<p class="caption">CSV: {TABLES_DIR}/{table.name}.csv</p>'
    return f'<div class="{wrap}">{body}</div>{caption or ""}{csv}'


def _html_plot(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (f'<figure><img alt="{html.escape(plot.caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption class="caption">'
            f"{html.escape(plot.caption)}</figcaption></figure>")


def _html_sentence(sentence: list[str | Figure]) -> str:
    return "".join(f'<a href="#{table_anchor(part.table)}">{html.escape(part.text)}</a>'
                   if isinstance(part, Figure) else html.escape(part) for part in sentence)


def _html_bullets(bullets: Bullets) -> str:
    items = "".join(f"<li><code>{html.escape(''.join(map(str, s)))}</code></li>"
                    if bullets.code else f"<li>{_html_sentence(s)}</li>"
                    for s in bullets.sentences)
    return f'<h3>{html.escape(bullets.heading)}</h3><ul class="findings">{items}</ul>'


def _html_item(item: Table | Plot | Bullets) -> str:
    if isinstance(item, Table):
        return _html_table(item)
    return _html_bullets(item) if isinstance(item, Bullets) else _html_plot(item)


def _markdown_bullets(bullets: Bullets) -> list[str]:
    lines = [f"### {bullets.heading}", ""]
    for sentence in bullets.sentences:
        if bullets.code:
            lines.append(f"- `{''.join(map(str, sentence))}`")
        else:
            lines.append("- " + "".join(
                f"[{part.text}](#{table_anchor(part.table)})" if isinstance(part, Figure)
                else part for part in sentence))
    return [*lines, ""]


def render_html(title: str, meta: str, sections: list[Section], notes: list[str],
                warnings: Iterable[str] = ()) -> str:
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>'
                  for s in sections)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='meta'>{html.escape(meta)}</p>",
             *(f"<p class='warning'><strong>Warning:</strong> {html.escape(line)}</p>"
               for line in warnings),
             f"<nav><ul>{toc}</ul></nav>"]
    for section in sections:
        parts.append(f'<h2 id="{section.anchor}">{html.escape(section.title)}</h2>')
        if section.intro:
            parts.append(f'<p class="intro">{html.escape(section.intro)}</p>')
        parts += [_html_item(item) for item in section.items]
    if notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        parts.append(f'<h2 id="notes">Notes</h2><ul class="notes">{items}</ul>')
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(title: str, meta: str, sections: list[Section], notes: list[str],
                    warnings: Iterable[str] = ()) -> str:
    lines = [f"# {title}", "", meta, ""]
    for line in warnings:
        lines += [f"> **Warning:** {line}", ""]
    lines += [f"- [{s.title}](#{s.anchor})" for s in sections] + [""]
    for section in sections:
        lines += [f'<a id="{section.anchor}"></a>', f"## {section.title}", ""]
        if section.intro:
            lines += [section.intro, ""]
        for item in section.items:
            if isinstance(item, Bullets):
                lines += _markdown_bullets(item)
            elif isinstance(item, Table):
                lines += [f'<a id="{table_anchor(item.name)}"></a>', "",
                          markdown_table(item.shown), ""]
                if item.caption:
                    lines += [f"_{item.caption}_", ""]
            else:
                lines += [f"![{item.caption}]({PLOTS_DIR}/{item.name}.png)", "",
                          f"_{item.caption}_", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)


def _clear(folder: Path, pattern: str) -> None:
    """Drop our own outputs of an earlier report, so a renamed study leaves no stale file."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(pattern):
        old.unlink()


def write_files(out_dir: Path, sections: list[Section]) -> None:
    _clear(out_dir / TABLES_DIR, "*.csv")
    _clear(out_dir / PLOTS_DIR, "*.png")
    findings = []
    for section in sections:
        for item in section.items:
            if isinstance(item, Bullets):
                findings.append(item)
            elif isinstance(item, Table):
                item.frame.to_csv(out_dir / TABLES_DIR / f"{item.name}.csv", index=False)
            else:
                (out_dir / PLOTS_DIR / f"{item.name}.png").write_bytes(item.png)
    figures_frame(findings).to_csv(out_dir / TABLES_DIR / f"{FINDINGS_CSV}.csv", index=False)


def merged_latency(run_latency: pd.DataFrame, benchmark_jsons: Iterable[Path | str],
                   notes: list[str]) -> pd.DataFrame:
    """The run's latency records plus every pytest-benchmark file's latency benchmarks."""
    frames = [run_latency] + [load_benchmark_json(path, notes) for path in benchmark_jsons]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return run_latency
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def write_report(run_dir: Path | str, out_dir: Path | str | None = None,
                 benchmark_jsons: Iterable[Path | str] = ()) -> Path:
    """Read `run_dir`, write the report into `out_dir` (default RUN_DIR/report); return it.

    The folder gets report.md, report.html, tables/*.csv and plots/*.png.
    """
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / folders.REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    notes = list(run.notes)
    benchmarks = [str(path) for path in benchmark_jsons]  # read twice: not a one-pass iterable
    latency = merged_latency(run.latency, benchmarks, notes)
    sections = build_sections(run, latency, benchmarks)
    warnings = load_warnings(run, latency)
    write_files(out, sections)
    title = f"harness report: {Path(run_dir).resolve().name}"
    meta = f"Generated {utc_now()} from {Path(run_dir)}."
    (out / REPORT_MD).write_text(render_markdown(title, meta, sections, notes, warnings),
                                 encoding="utf-8")
    (out / REPORT_HTML).write_text(render_html(title, meta, sections, notes, warnings),
                                   encoding="utf-8")
    return out
