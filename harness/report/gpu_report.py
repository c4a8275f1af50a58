"""Write the report of a scripts/gpu_check.sh folder (read by harness.report.gpu): report.md, a
self-contained report.html and tables/*.csv, with the renderers of every `harness report`."""

from __future__ import annotations

from pathlib import Path

from harness.measure.environment import utc_now
from harness.records.folders import REPORT_DIR
from harness.report.gpu import load_gpu_check
from harness.report.gpu_sections import build_gpu_sections, gpu_warnings
from harness.report.render import REPORT_HTML, REPORT_MD, render_html, render_markdown, write_files


def write_gpu_report(folder: Path | str, out_dir: Path | str | None = None) -> Path:
    """Read a gpu_check.sh folder, write its report into `out_dir` (default FOLDER/report);
    return that folder. UsageError (one line) when FOLDER is not such a folder."""
    check = load_gpu_check(folder)
    out = Path(out_dir) if out_dir is not None else Path(folder) / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    sections = build_gpu_sections(check)
    warnings = gpu_warnings(check)
    write_files(out, sections)
    what = "GPU check" if check.on_gpu else "GPU check, dry run on the CPU"
    title = f"harness report: {what} ({Path(folder).resolve().name})"
    meta = (f"Generated {utc_now()} from {Path(folder)}; scripts/gpu_check.sh started "
            f"{check.manifest.get('started_utc')}, commit {check.manifest.get('commit') or '?'}.")
    (out / REPORT_MD).write_text(render_markdown(title, meta, sections, check.notes, warnings),
                                 encoding="utf-8")
    (out / REPORT_HTML).write_text(render_html(title, meta, sections, check.notes, warnings),
                                   encoding="utf-8")
    return out
