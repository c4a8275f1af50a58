"""`harness run`: the resumable matrix of jobs, from options or a run plan."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from harness.commands import args as opt
from harness.commands.common import (
    DATASETS,
    add_run_option,
    console,
    data_point,
    err_console,
    print_error,
    writing_into,
)
from harness.errors import UsageError
from harness.measure.environment import utc_now
from harness.run.options import RUN_OPTIONS
from harness.run.sweeps import NPZ_PATH

if TYPE_CHECKING:  # `harness run`'s types, imported when it runs
    from harness.run.display import Display
    from harness.run.executors import Executor
    from harness.run.outcome import JobOutcome
    from harness.run.plan import RunConfig


def _option_kind(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "switch"
    return "repeatable" if isinstance(action, argparse._AppendAction) else "value"


def with_plan(parser: argparse.ArgumentParser, args: argparse.Namespace,
              argv: list[str]) -> argparse.Namespace:
    """`harness run --plan FILE`: the plan's options become the defaults of the command line
    (parsed, so checked, like typed ones), then the command line is parsed again over them."""
    from harness.run.plan_file import read_plan

    run_parser = args.run_parser
    if args.specs is not None or args.seeds is not None:
        raise UsageError("--plan: give the specs and seeds in the plan's groups, not with "
                         "--specs / --seeds")
    flags = {action.dest: _option_kind(action) for action in run_parser._actions
             if action.option_strings and action.dest != "help"}
    plan = read_plan(args.plan, flags)
    prog = run_parser.prog
    run_parser.prog = f"{prog} --plan {args.plan}"  # errors name the file
    try:
        given = run_parser.parse_args(plan.options)
        groups = [run_parser.parse_args([token for key, text in group.items()
                                         for token in (f"--{key}", text)])
                  for group in plan.groups]
    finally:
        run_parser.prog = prog
    in_plan = {token.removeprefix("--").replace("-", "_") for token in plan.options
               if token.startswith("--")}
    run_parser.set_defaults(**{dest: getattr(given, dest) for dest in in_plan})
    args = parser.parse_args(argv)
    args.groups = [(group.specs, group.seeds) for group in groups]
    return args


def _config_fields(args: argparse.Namespace) -> dict[str, Any]:
    """RunConfig's fields from the options, with what they leave to the run: every installed
    backend, --dataset as its --set, the data folder's absolute path."""
    from harness.backends import installed_backends

    fields = {option.field: getattr(args, option.dest) for option in RUN_OPTIONS}
    fields["specs"] = args.specs or []
    fields["backends"] = args.backends or installed_backends()
    fields["sets"] = [*(args.set or []), *(f"{path}={value}" for path, value in
                                           _data_point(args).items())]
    fields["data_dir"] = str(args.data_dir.resolve()) if args.data_dir else None
    return fields


def _data_point(args: argparse.Namespace) -> dict[str, Any]:
    """--dataset or --data as the --set they stand for; a path with a comma cannot be one."""
    point = data_point(args)
    if "," in str(point.get(NPZ_PATH, "")):
        raise UsageError(f"--data {args.data}: a path with a comma (--set reads commas as a "
                         "list of values); rename the file or its folder")
    return point


def _executor(args: argparse.Namespace, config: RunConfig) -> Executor:
    from harness.run.executors import ExecutorChoice, make_executor

    return make_executor(ExecutorChoice(
        args.executor, args.workers, args.ray_address, args.ray_retries, args.fetch_models,
        args.fresh_processes),
        threads=config.threads, needs_gpu=config.device == "cuda" or "cuda" in config.providers)


def run_display(verbose: bool) -> Display:
    """Rich progress bars on a terminal, plain lines otherwise (logs, pipes, CI)."""
    from harness.run.display import PlainDisplay, RichDisplay

    if console.is_terminal:
        return RichDisplay(console, verbose)
    return PlainDisplay(lambda line: console.print(line, highlight=False, markup=False), verbose)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.executors import ExecutorUnavailable
    from harness.run.job import at_step
    from harness.run.matrix import check_resources, run_matrix
    from harness.run.plan import RunConfig, SpecGroup

    groups = [SpecGroup(specs, seeds) for specs, seeds in getattr(args, "groups", [])]
    if not groups and args.specs is None:
        raise UsageError("harness run: give --specs or --plan")
    config = RunConfig(**_config_fields(args), groups=groups)
    out = args.out or Path("results") / f"run-{utc_now().replace(':', '').replace('-', '')}"
    try:
        with writing_into(out):
            summary = run_matrix(config, out, executor=_executor(args, config),
                                 display=run_display(args.verbose), preflight=check_resources)
    except ExecutorUnavailable as exc:
        print_error(str(exc))
        return 3
    console.print(f"{summary['ok']}/{summary['jobs']} jobs ok in {out}")
    for failure in summary["failed"]:
        err_console.print(f"[red]failed:[/red] {escape(failure['job_id'])}"
                          f"{at_step(failure['failed_step'])}: {escape(str(failure['error']))}",
                          highlight=False)
    for job in summary["unavailable"]:  # a compile mode this platform cannot run
        err_console.print(f"unavailable: {job['job_id']}: {job['reason']}", highlight=False,
                          markup=False)
    if summary["failed"]:
        err_console.print("re-run the same command to retry the failed jobs")
    print_outcomes(out)
    return 0 if not summary["failed"] else 1


MAX_OUTCOME_ROWS = 40  # a long run's table is the report's job; the terminal gets a glance


def _epoch_text(outcome: JobOutcome) -> str:
    if outcome.steady_epoch_s is None:
        return "" if outcome.first_epoch_s is None else (
            f"{outcome.first_epoch_s:.2f} s (1 epoch: no steady one)")
    text = f"{outcome.steady_epoch_s:.3g} s"
    if outcome.steady_interval:
        low, high = outcome.steady_interval
        text += f" [{low:.3g}–{high:.3g}]"
    return text + f" (median of {outcome.epochs - 1})"


def print_outcomes(out: Path) -> None:
    """A glance at what the run's jobs came to, and the commands that go further."""
    from rich.table import Table

    from harness.records.io import read_json
    from harness.run.outcome import run_outcomes, step_ratios

    try:
        planned = [job["job_id"] for job in read_json(out / "run.json").get("jobs") or []]
    except (OSError, ValueError, KeyError, TypeError):
        planned = []
    outcomes = run_outcomes(out, planned)
    if outcomes:
        table = Table("job", "test accuracy", "test loss", "steady epoch [95 % over epochs]",
                      "steady step [95 % over windows]", "ONNX parity",
                      title="what the jobs came to", title_justify="left")
        for outcome in outcomes[:MAX_OUTCOME_ROWS]:
            table.add_row(escape(outcome.job_id), _number(outcome.accuracy, 4),
                          _number(outcome.loss, 4), _epoch_text(outcome),
                          outcome.step.short() if outcome.step else "",
                          outcome.parity or ("" if outcome.status == "ok" else outcome.status))
        console.print(table)
        if len(outcomes) > MAX_OUTCOME_ROWS:
            console.print(f"... and {len(outcomes) - MAX_OUTCOME_ROWS} more jobs: see the report")
        for ratio in step_ratios(outcomes)[:MAX_OUTCOME_ROWS]:
            console.print(ratio.describe(), highlight=False, markup=False, soft_wrap=True)
    console.print(f"next: harness report {out}    (tables, plots, the decision table)\n"
                  f"      harness retime {out}    (step and call times of each framework in "
                  "interleaved windows: ratios with intervals against a measured noise floor)",
                  highlight=False, markup=False)


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Where and how many jobs of `harness run` run at once (harness.run.executors)."""
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="local: jobs on this machine (default); ray: each job a Ray task "
                             "on a cluster (pip install -e '.[ray]')")
    parser.add_argument("--workers", type=opt.integer(1, opt.MAX_THREADS), default=1,
                        help="local: N jobs at once, each pinned to its own cores (its threads) "
                             "and, with CUDA, its own GPU (default 1: one job at a time, "
                             "unpinned)")
    parser.add_argument("--fresh-processes", action="store_true",
                        help="local: start every job in a new interpreter (default: fork it from "
                             "a warm process per framework that imported it once; runs using "
                             "CUDA always start new ones)")
    parser.add_argument("--ray-address",
                        help="ray: the cluster, auto or ray://HOST:PORT (default: $RAY_ADDRESS, "
                             "else a local cluster for this run)")
    parser.add_argument("--ray-retries", type=opt.integer(0, 100), default=2,
                        help="ray: retries of a job whose worker is lost (default 2); then it "
                             "is recorded as failed")
    parser.add_argument("--fetch-models", action="store_true",
                        help="ray: also bring back each job's framework model file and initial "
                             "weights (default: records, ONNX file, final weights)")
    parser.add_argument("--verbose", action="store_true",
                        help="show everything the jobs print (framework notices, TensorFlow's "
                             "log lines), not only their progress; it is always in each job.log")


def _add_run_options(run: argparse.ArgumentParser) -> None:
    """RunConfig's options (harness.run.options), with --plan and --dataset beside the specs."""
    for option in RUN_OPTIONS:
        add_run_option(run, option)
        if option.field == "specs":
            run.add_argument("--plan", type=opt.existing_file,
                             help="a YAML run plan: groups of specs with their seeds, and run "
                                  "options (options given here override the plan's); instead "
                                  "of --specs")
        elif option.field == "sets":
            run.add_argument("--dataset", choices=DATASETS,
                             help="every spec on this dataset instead of its input.dataset (as "
                                  "--set input.dataset=NAME)")
            run.add_argument("--data", type=opt.existing_file, metavar="NPZ",
                             help="every spec on your own arrays: an .npz holding x_train, "
                                  "y_train, x_test, y_test (as --set input.dataset.npz=PATH)")


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="the matrix: train, export, parity, latency per job; "
                                     "resumable")
    _add_run_options(run)
    run.add_argument("--out", type=opt.output_folder,
                     help="run folder (default: results/run-<time>)")
    _add_executor_options(run)
    run.set_defaults(func=cmd_run, run_parser=run)
