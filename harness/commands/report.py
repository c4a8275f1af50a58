"""`harness report` and `harness compare`: a run's report, and one run against another."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from harness.commands import args as opt
from harness.commands.common import console, writing_into
from harness.errors import UsageError
from harness.records.folders import GPU_MANIFEST, REPORT_DIR

if TYPE_CHECKING:  # pandas: imported when a command needs it
    import pandas as pd


def cmd_gpu_report(args: argparse.Namespace) -> int:
    """`harness report` on a scripts/gpu_check.sh folder (harness.report.gpu)."""
    if args.benchmark_json:
        raise UsageError("--benchmark-json: not taken with a scripts/gpu_check.sh folder (its "
                         "latency records are its own)")
    from harness.report.gpu_report import write_gpu_report

    run_dir = Path(args.run_dir)
    with writing_into(args.out or run_dir / REPORT_DIR):
        out = write_gpu_report(run_dir, args.out)
    console.print(f"wrote {out / 'report.html'} and {out / 'report.md'} (tables/*.csv beside "
                  "them)", highlight=False)
    return 0


def _is_gpu_check(run_dir: str) -> bool:
    """Whether RUN_DIR is a scripts/gpu_check.sh folder, asked without importing the report
    package (pandas) before the arguments are known to be good."""
    try:
        return (Path(run_dir) / GPU_MANIFEST).is_file()
    except (OSError, ValueError):  # a path the OS refuses: the run-folder check says so
        return False


def cmd_report(args: argparse.Namespace) -> int:
    if _is_gpu_check(args.run_dir):  # a scripts/gpu_check.sh folder gets the GPU report
        return cmd_gpu_report(args)
    run_dir = opt.checked(opt.run_results, args.run_dir, "RUN_DIR")  # before creating anything
    from harness.report import write_report  # pandas and matplotlib: only for a real report

    with writing_into(args.out or run_dir / REPORT_DIR):
        out = write_report(run_dir, args.out, args.benchmark_json or [])
    console.print(f"wrote {out / 'report.html'} and {out / 'report.md'} "
                  f"(tables/*.csv, plots/*.png beside them)", highlight=False)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    folders = [opt.checked(opt.run_results, text, name)
               for text, name in ((args.run_a, "RUN_A"), (args.run_b, "RUN_B"))]
    # pandas: imported only when needed
    from harness.report.compare import (
        compare_runs,
        gate_problems,
        setting_differences,
        without_verdicts,
    )
    from harness.report.load import load_run

    run_a, run_b = map(load_run, folders)
    differences = setting_differences(run_a, run_b)
    judged = args.allow_different or not differences
    if args.fail_on_regression and not judged:  # a CI gate must not pass or fail unlike runs
        raise UsageError(
            "--fail-on-regression: RUN_A and RUN_B were run with different settings ("
            + "; ".join(f"{name}: A {a}, B {b}" for name, a, b in differences)
            + "); a gate compares runs made alike: rerun one with the other's settings, or "
              "add --allow-different to judge them anyway")
    frame = compare_runs(run_a, run_b, threshold_sigma=args.threshold_sigma,
                         min_rel=args.min_rel, min_accuracy=args.min_accuracy)
    if not judged:
        frame = without_verdicts(frame)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.csv, index=False)
    _print_differences(differences, judged)
    _print_table(args, frame)
    problems = gate_problems(run_a, run_b, frame)
    for line in problems:
        console.print(f"[red]{escape(line)}[/red]", highlight=False, soft_wrap=True)
    listed = f"; {len(problems)} problem(s) listed above" if problems else ""
    if not judged:
        console.print(f"no verdicts: {len(frame)} compared values shown without verdicts, as "
                      f"{len(differences)} setting(s) differ between the runs{listed}")
        return 0
    regressions = int((frame["flag"] == "regression").sum())
    console.print(f"{regressions} regression(s), {int((frame['flag'] == 'improvement').sum())} "
                  f"improvement(s) beyond noise in {len(frame)} compared values{listed}")
    return 1 if (regressions or problems) and args.fail_on_regression else 0


def _print_differences(differences: list[tuple[str, str, str]], judged: bool) -> None:
    """Each setting that differs between the runs, and whether their changes are judged."""
    if not differences:
        return
    console.print(f"{len(differences)} setting(s) differ between the runs; "
                  + ("changes judged anyway (--allow-different):" if judged else
                     "values shown without verdicts (--allow-different judges them):"),
                  highlight=False, soft_wrap=True)
    for name, a, b in differences:
        console.print(f"  {escape(name)}: A {escape(a)}, B {escape(b)}", highlight=False,
                      soft_wrap=True)


def _print_table(args: argparse.Namespace, frame: pd.DataFrame) -> None:
    from harness.report.compare import display_rows

    table = Table(title=f"{escape(args.run_b)} against {escape(args.run_a)} (baseline)",
                  header_style="bold", title_justify="left")
    for column in ("spec", "point", "backend", "metric", "A", "B", "delta", "change",
                   "threshold", "rule", "flag"):
        table.add_column(column, justify="left" if column in (
            "spec", "point", "backend", "metric", "rule", "flag") else "right")
    flags = {"regression": "red", "improvement": "green"}
    for row in display_rows(frame):
        if not args.flagged_only or row[-1]:
            table.add_row(*row, style=flags.get(row[-1]))
    console.print(table)


def register(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="a run's report: report.md, report.html, CSV tables")
    # RUN_DIR is checked by the command, after the options (opt.checked)
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.add_argument("--benchmark-json", type=opt.existing_file, action="append",
                        metavar="FILE",
                        help="merge a pytest-benchmark JSON file's latencies (repeatable)")
    report.add_argument("--out", type=opt.output_folder,
                        help="report folder (default: RUN_DIR/report)")
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser("compare", help="run B against run A: changes beyond noise")
    compare.add_argument("run_a", metavar="RUN_A", help="the baseline run")
    compare.add_argument("run_b", metavar="RUN_B")
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
                         help="exit 1 when a regression is flagged, a job of RUN_B failed, one "
                              "finished in RUN_A is missing from it, or nothing could be "
                              "compared (default: exit 0); exit 2 when the runs' settings "
                              "differ, unless --allow-different")
    compare.add_argument("--allow-different", action="store_true",
                         help="judge changes (regression, improvement) even where the runs' "
                              "settings differ (epochs, threads, versions, machine, ...); by "
                              "default the differences are listed and no verdict given")
    compare.set_defaults(func=cmd_compare)
