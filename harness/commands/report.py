"""`harness report` and `harness compare`: a run's report, and one run against another."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from harness import cli_args as opt
from harness.commands.common import console
from harness.errors import UsageError


def cmd_report(args: argparse.Namespace) -> int:
    if not opt.is_folder(args.run_dir):
        raise UsageError(f"RUN_DIR: {args.run_dir}: no such folder")
    from harness.report import write_report  # pandas and matplotlib: only for a real report

    out = write_report(args.run_dir, args.out, args.benchmark_json or [])
    console.print(f"wrote {out / 'report.html'} and {out / 'report.md'} "
                  f"(tables/*.csv, plots/*.png beside them)", highlight=False)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    for folder in (args.run_a, args.run_b):
        if not opt.is_folder(folder):
            raise UsageError(f"RUN_A, RUN_B: {folder}: no such folder")
    from harness.report.compare import compare_runs, display_rows  # pandas: only when needed

    frame = compare_runs(args.run_a, args.run_b, threshold_sigma=args.threshold_sigma,
                         min_rel=args.min_rel, min_accuracy=args.min_accuracy)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.csv, index=False)
    table = Table(title=f"{args.run_b} against {args.run_a} (baseline)", header_style="bold",
                  title_justify="left")
    for column in ("spec", "point", "backend", "metric", "A", "B", "delta", "change",
                   "threshold", "rule", "flag"):
        table.add_column(column, justify="left" if column in (
            "spec", "point", "backend", "metric", "rule", "flag") else "right")
    flags = {"regression": "red", "improvement": "green"}
    for row in display_rows(frame):
        if not args.flagged_only or row[-1]:
            table.add_row(*row, style=flags.get(row[-1]))
    console.print(table)
    regressions = int((frame["flag"] == "regression").sum())
    console.print(f"{regressions} regression(s), {int((frame['flag'] == 'improvement').sum())} "
                  f"improvement(s) beyond noise in {len(frame)} compared values")
    return 1 if regressions and args.fail_on_regression else 0


def register(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="a run's report: report.md, report.html, CSV tables")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.add_argument("--benchmark-json", type=opt.existing_file, action="append",
                        metavar="FILE",
                        help="merge a pytest-benchmark JSON file's latencies (repeatable)")
    report.add_argument("--out", type=opt.folder,
                        help="report folder (default: RUN_DIR/report)")
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser("compare", help="run B against run A: changes beyond noise")
    compare.add_argument("run_a", type=Path, metavar="RUN_A", help="the baseline run")
    compare.add_argument("run_b", type=Path, metavar="RUN_B")
    compare.add_argument("--threshold-sigma", type=opt.number(0, above=True), default=3.0,
                         help="with several seeds in both runs: flag |delta| above this many "
                              "pooled standard deviations (default 3)")
    compare.add_argument("--min-rel", type=opt.number(0), default=0.05,
                         help="otherwise flag timings changed by more than this fraction "
                              "(default 0.05)")
    compare.add_argument("--min-accuracy", type=opt.number(0, 1), default=0.005,
                         help="otherwise flag accuracy changed by more than this (default "
                              "0.005, half a percentage point)")
    compare.add_argument("--flagged-only", action="store_true", help="print flagged rows only")
    compare.add_argument("--csv", type=opt.output_file,
                         help="also write every compared value here")
    compare.add_argument("--fail-on-regression", action="store_true",
                         help="exit 1 when a regression is flagged (default: exit 0)")
    compare.set_defaults(func=cmd_compare)
