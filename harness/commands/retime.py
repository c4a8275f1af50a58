"""`harness retime`: time a finished run's specs again, quietly: by default with the timing
protocol (harness.run.retime_speed: interleaved windows, intervals, the A/A noise floor), or,
with --whole-epochs, as whole epochs of its busy jobs (harness.run.retime)."""

from __future__ import annotations

import argparse

from harness.commands import args as opt
from harness.commands.common import console, err_console
from harness.errors import UsageError

_QUIET = ("keep the machine quiet (other processes above {cores:g} core mark a figure busy, and "
          "it is timed again on the next `harness retime`)")


def _check_specs(option: str, names: list[str] | None, known: set[str]) -> None:
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise UsageError(f"{option}: {', '.join(unknown)}: not a spec of the run "
                         f"(its specs: {', '.join(sorted(known)) or 'none'})")


def _whole_epochs(args: argparse.Namespace, quiet: str) -> int:
    from harness.commands.run import run_display
    from harness.run.executors.local import LocalExecutor
    from harness.run.retime import retime_dir, retime_run

    console.print(f"re-timing {args.run_dir}: one job per spec x backend, {args.epochs} full "
                  f"epochs each, one at a time; {quiet}", highlight=False)
    summary = retime_run(args.run_dir, LocalExecutor(), run_display(args.verbose),
                         epochs=args.epochs, everything=args.all, specs=args.specs)
    console.print(f"{summary['ok']}/{summary['jobs']} re-timings ok in "
                  f"{retime_dir(args.run_dir)}; `harness report {args.run_dir}` uses them",
                  highlight=False)
    for failure in summary["failed"]:
        err_console.print(f"failed: {failure['job_id']} at {failure['failed_step']}: "
                          f"{failure['error']}", highlight=False, markup=False)
    return 0 if not summary["failed"] else 1


def _protocol(args: argparse.Namespace, quiet: str) -> int:
    from harness.measure.protocol import Protocol
    from harness.run.retime_speed import SpeedPass, retime_speed

    protocol = Protocol(windows=args.windows, training_seconds=args.training_seconds,
                        latency_seconds=args.latency_seconds)
    console.print(f"timing {args.run_dir} with the protocol: per spec, {args.windows} "
                  f"interleaved window pairs per comparison (training >= "
                  f"{args.training_seconds:g} s, latency >= {args.latency_seconds:g} s a "
                  f"window); {quiet}", highlight=False)
    summary = retime_speed(args.run_dir, SpeedPass(
        protocol=protocol, specs=args.specs, noise_specs=args.noise_specs,
        repeat=not args.no_repeat),
        log=lambda line: console.print(line, highlight=False, markup=False))
    console.print(f"{summary['specs'] - len(summary['failed'])}/{summary['specs']} specs timed "
                  f"({summary['aliases']} alias(es) counted with them), A/A on "
                  f"{', '.join(summary['noise_specs']) or 'none'}, repeated: "
                  f"{', '.join(summary['repeated']) or 'none'}; records in {summary['out']}; "
                  f"`harness report {args.run_dir}` uses them", highlight=False)
    for line in summary["failed"]:
        err_console.print(f"failed: {line}", highlight=False, markup=False)
    return 0 if not summary["failed"] else 1


def cmd_retime(args: argparse.Namespace) -> int:
    from harness.measure.machine_load import NOISY_OTHERS_CORES
    from harness.run.retime import run_specs

    known = run_specs(args.run_dir)
    _check_specs("--specs", args.specs, known)
    _check_specs("--noise-specs", args.noise_specs, known)
    quiet = _QUIET.format(cores=NOISY_OTHERS_CORES)
    return _whole_epochs(args, quiet) if args.whole_epochs else _protocol(args, quiet)


def register(sub: argparse._SubParsersAction) -> None:
    from harness.run.retime import DEFAULT_EPOCHS

    retime = sub.add_parser(
        "retime", help="time a finished run's specs again on a quiet machine: interleaved "
                       "windows with intervals and an A/A noise floor, into RUN_DIR/speed "
                       "(or --whole-epochs: whole epochs of its busy jobs, into RUN_DIR/retime)")
    retime.add_argument("run_dir", type=opt.matrix_run, metavar="RUN_DIR",
                        help="a `harness run` folder")
    retime.add_argument("--specs", type=opt.csv(str),
                        help="only these specs (names, comma-separated)")
    retime.add_argument("--windows", type=opt.integer(2, 1000), default=7,
                        help="timed window pairs per comparison (default 7)")
    retime.add_argument("--training-seconds", type=opt.number(0, 600, above=True), default=2.0,
                        help="a training window lasts at least this long (default 2)")
    retime.add_argument("--latency-seconds", type=opt.number(0, 60, above=True), default=0.2,
                        help="a latency window lasts at least this long (default 0.2)")
    retime.add_argument("--noise-specs", type=opt.csv(str),
                        help="specs also timed against themselves (A/A, the noise floor) and "
                             "again at the end (default: one per study)")
    retime.add_argument("--no-repeat", action="store_true",
                        help="do not time the noise specs again at the end")
    retime.add_argument("--whole-epochs", action="store_true",
                        help="instead: re-run the run's busy jobs for --epochs whole epochs")
    retime.add_argument("--epochs", type=opt.integer(2, 1000), default=DEFAULT_EPOCHS,
                        help=f"with --whole-epochs: full epochs per re-timing, at least 2 "
                             f"(default {DEFAULT_EPOCHS})")
    retime.add_argument("--all", action="store_true",
                        help="with --whole-epochs: every spec x backend, not only busy ones")
    retime.add_argument("--verbose", action="store_true",
                        help="with --whole-epochs: show everything the jobs print")
    retime.set_defaults(func=cmd_retime)
