"""Reports on matrix runs (`harness report`) and run-to-run comparison (`harness compare`).

Reads the RUN_DIR layout of harness/records/folders.py with pandas and plots with matplotlib;
imports no
deep-learning framework.
"""

from harness.report.compare import compare_runs
from harness.report.load import RunData, load_run
from harness.report.render import write_report

__all__ = ["RunData", "compare_runs", "load_run", "write_report"]
