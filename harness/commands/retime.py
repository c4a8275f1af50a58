"""`harness retime`: time a run's busy timings again, quietly (harness.run.retime)."""

from __future__ import annotations

import argparse

from harness import cli_args as opt
from harness.commands.common import console, err_console
from harness.commands.run import run_display
from harness.errors import UsageError


def cmd_retime(args: argparse.Namespace) -> int:
    from harness.machine_load import NOISY_OTHERS_CORES
    from harness.run.executors.local import LocalExecutor
    from harness.run.retime import retime_dir, retime_run, run_specs

    if args.specs is not None:
        known = run_specs(args.run_dir)
        unknown = [name for name in args.specs if name not in known]
        if unknown:
            raise UsageError(f"--specs: {', '.join(unknown)}: not a spec of {args.run_dir} "
                             f"(its specs: {', '.join(sorted(known)) or 'none'})")
    console.print(f"re-timing {args.run_dir}: one job per spec x backend, {args.epochs} full "
                  f"epochs each, one at a time; keep the machine quiet (other processes above "
                  f"{NOISY_OTHERS_CORES:g} core mark a figure busy, and it is timed again on "
                  f"the next `harness retime`)", highlight=False)
    summary = retime_run(args.run_dir, LocalExecutor(), run_display(args.verbose),
                         epochs=args.epochs, everything=args.all, specs=args.specs)
    out = retime_dir(args.run_dir)
    console.print(f"{summary['ok']}/{summary['jobs']} re-timings ok in {out}; "
                  f"`harness report {args.run_dir}` uses them", highlight=False)
    for failure in summary["failed"]:
        err_console.print(f"failed: {failure['job_id']} at {failure['failed_step']}: "
                          f"{failure['error']}", highlight=False, markup=False)
    return 0 if not summary["failed"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    from harness.run.retime import DEFAULT_EPOCHS

    retime = sub.add_parser(
        "retime", help="time a run's busy epochs and latencies again on a quiet machine: a "
                       "couple of full epochs per spec x backend, into RUN_DIR/retime")
    retime.add_argument("run_dir", type=opt.matrix_run, metavar="RUN_DIR",
                        help="a `harness run` folder")
    retime.add_argument("--epochs", type=opt.integer(2, 1000), default=DEFAULT_EPOCHS,
                        help=f"full epochs per re-timing, at least 2 for a steady figure "
                             f"(default {DEFAULT_EPOCHS})")
    retime.add_argument("--all", action="store_true",
                        help="re-time every spec x backend, not only those with busy timings")
    retime.add_argument("--specs", type=opt.csv(str),
                        help="only these specs (names, comma-separated)")
    retime.add_argument("--verbose", action="store_true",
                        help="show everything the jobs print")
    retime.set_defaults(func=cmd_retime)
