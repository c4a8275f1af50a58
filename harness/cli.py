"""`harness` command line: each subcommand parses its arguments and calls one library function.

Frameworks are imported only by the commands that need them, so `harness list` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import cli_args as opt
from harness.env import utc_now
from harness.errors import UsageError
from harness.spec import SpecError, infer, list_specs, load_spec, spec_hash, zoo_dir
from harness.spec.shapes import describe

if TYPE_CHECKING:  # `harness run`'s types, imported when it runs
    from harness.run.display import Display
    from harness.run.executors import Executor
    from harness.run.plan import RunConfig

# Piped output (files, CI logs) gets room for whole tables rather than rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def print_error(message: str) -> None:
    """`error: ...` on stderr, one line per line of `message`, never wrapped (scripts and
    logs read it), user text never taken for rich markup."""
    for line in message.splitlines() or [""]:
        err_console.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)


def cmd_list(args: argparse.Namespace) -> int:
    table = Table(title=f"Model zoo: {len(list_specs())} specs in {zoo_dir()}", box=None,
                  header_style="bold", title_justify="left")
    table.add_column("spec", no_wrap=True)
    for column in ("input", "layers", "params", "optimizer", "batch", "epochs"):
        table.add_column(column, no_wrap=True,
                         justify="left" if column in ("input", "optimizer") else "right")
    for name in list_specs():
        spec = load_spec(name)
        shape = "x".join(str(d) for d in spec.input.shape)
        table.add_row(name, shape, str(len(spec.layers)), f"{infer(spec).total_params:,}",
                      spec.train.optimizer.name, str(spec.train.batch_size),
                      str(spec.train.epochs))
    console.print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    summary = infer(spec)
    table = Table(title=f'Model: "{spec.name}"  (hash {spec_hash(spec)})')
    table.add_column("#", justify="right")
    table.add_column("Layer (type)")
    table.add_column("Output Shape")
    table.add_column("Param #", justify="right")
    table.add_row("", "input", str((None, *summary.input_shape)), "0")
    for info in summary.layers:
        table.add_row(str(info.index), describe(info.layer), str((None, *info.output_shape)),
                      f"{info.params:,}")
    console.print(table)
    console.print(f" Total params: {summary.total_params:,}")
    console.print(f" Trainable params: {summary.trainable_params:,}")
    console.print(f" Non-trainable params: {summary.non_trainable_params:,}")
    train = spec.train
    hyper = ", ".join(f"{k}={v}" for k, v in train.optimizer.model_dump().items() if k != "name")
    console.print(f" Optimizer: {train.optimizer.name}({hyper})")
    console.print(f" Loss: {train.loss}; batch {train.batch_size}; {train.epochs} epochs; "
                  f"seed {train.seed}; validation: {train.validation}")
    if spec.description:
        console.print(f" {spec.description}")
    return 0


def _print_epoch(record: object, epochs: int) -> None:
    val = ""
    if record.val_loss is not None:
        val = f"  val_loss {record.val_loss:.4f}  val_acc {record.val_accuracy:.4f}"
    console.print(f"epoch {record.epoch:>3}/{epochs}  loss {record.train_loss:.4f}  "
                  f"acc {record.train_accuracy:.4f}{val}  {record.seconds:.2f}s")


def cmd_train(args: argparse.Namespace) -> int:
    from harness.training import TrainConfig, train_and_evaluate

    config = TrainConfig(backend=args.backend, device=args.device, epochs=args.epochs,
                         seed=args.seed, limit=args.limit, limit_test=args.limit_test,
                         threads=args.threads, data_dir=args.data_dir,
                         batch_size=args.batch_size, tf32=args.tf32, layout=args.layout)
    spec = load_spec(args.spec)
    console.print(f"training {spec.name} with {args.backend} on {args.device}")
    outcome = train_and_evaluate(spec, config, out_dir=args.out, on_epoch=_print_epoch)
    metrics = outcome.metrics
    console.print(f"test_loss {metrics['test_loss']:.4f}  test_accuracy "
                  f"{metrics['test_accuracy']:.4f}  ({metrics['n_test']} test images)")
    console.print(f"wrote {outcome.out_dir / 'metrics.json'} and {metrics['model_file']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from harness.exporting import export_model

    if args.spec is None and args.from_run is None:
        raise UsageError("harness export: give --spec, --from RUN_DIR, or both")
    record = export_model(args.spec, args.backend, args.out, run_dir=args.from_run,
                          opset=args.opset, data_dir=args.data_dir, limit_test=args.limit_test,
                          threads=args.threads)
    parity, onnx_info = record["parity"], record["onnx"]
    weights = record["weights"]
    origin = ("initial weights (untrained: fine for latency, not for accuracy)"
              if weights["source"] == "initial"
              else f"weights trained in {weights['trained_backend']} ({weights['run_dir']})")
    console.print(f"exported {record['spec']['name']} from {args.backend} with "
                  f"{record['converter']}: {args.out} ({onnx_info['bytes']:,} bytes, opset "
                  f"{onnx_info['opset']}, {onnx_info['nodes']} nodes); {origin}")
    console.print(f"ONNX checker and shape inference passed; on {parity['n']} test images "
                  f"native vs ONNX Runtime ({parity['provider']}): max |diff| "
                  f"{parity['max_abs_diff']:.2e}, accuracy {parity['native_accuracy']:.4f} vs "
                  f"{parity['onnx_accuracy']:.4f}")
    if not record["passed"]:
        err_console.print(f"[red]error:[/red] parity failed: max |diff| "
                          f"{parity['max_abs_diff']:.2e} > {parity['tolerance']:.0e} "
                          f"(batch checks {parity['batch_max_abs_diff']})")
        return 1
    return 0


def cmd_parity(args: argparse.Namespace) -> int:
    from harness.parity import cross_parity

    if args.spec is None and not args.from_run:
        raise UsageError("harness parity: give --spec, --from RUN_DIR, or both")
    rows = cross_parity(args.spec, args.from_run, data_dir=args.data_dir,
                        limit_test=args.limit_test, opset=args.opset, threads=args.threads)
    table = Table(title="Cross-framework parity (probabilities on the test set)")
    for column in ("weights", "implementation", "accuracy", "max |diff| vs reference", ""):
        table.add_column(column, justify="right" if column not in ("weights",
                                                                   "implementation") else "left")
    for row in rows:
        table.add_row(row.weights, row.implementation, f"{row.accuracy:.4f}",
                      f"{row.max_abs_diff:.2e} vs {row.reference}",
                      "ok" if row.passed else "[red]FAIL[/red]")
    console.print(table)
    return 0 if all(row.passed for row in rows) else 1


def _option_kind(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "switch"
    return "repeatable" if isinstance(action, argparse._AppendAction) else "value"


def _with_plan(parser: argparse.ArgumentParser, args: argparse.Namespace,
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


def _executor(args: argparse.Namespace, config: RunConfig) -> Executor:
    from harness.run.executors import ExecutorChoice, make_executor

    return make_executor(ExecutorChoice(
        args.executor, args.workers, args.ray_address, args.ray_retries, args.fetch_models),
        threads=config.threads, needs_gpu=config.device == "cuda" or "cuda" in config.providers)


def _run_display(verbose: bool) -> Display:
    """Rich progress bars on a terminal, plain lines otherwise (logs, pipes, CI)."""
    from harness.run.display import PlainDisplay, RichDisplay

    if console.is_terminal:
        return RichDisplay(console, verbose)
    return PlainDisplay(lambda line: console.print(line, highlight=False, markup=False), verbose)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.executors import ExecutorUnavailable
    from harness.run.matrix import run_matrix
    from harness.run.plan import RunConfig, SpecGroup

    groups = [SpecGroup(specs, seeds) for specs, seeds in getattr(args, "groups", [])]
    if not groups and args.specs is None:
        raise UsageError("harness run: give --specs or --plan")
    config = RunConfig(specs=args.specs or [], groups=groups, backends=args.backends,
                       providers=args.providers,
                       batch_sizes=args.batch_sizes, seeds=args.seeds, epochs=args.epochs,
                       limit=args.limit, limit_test=args.limit_test, threads=args.threads,
                       device=args.device, sets=args.set or [], opset=args.opset,
                       latency_min_runs=args.latency_min_runs,
                       latency_min_seconds=args.latency_min_seconds,
                       strict_providers=args.strict_providers, tf32=args.tf32,
                       layout=args.layout,
                       data_dir=str(args.data_dir.resolve()) if args.data_dir else None)
    out = args.out or Path("results") / f"run-{utc_now().replace(':', '').replace('-', '')}"
    try:
        summary = run_matrix(config, out, executor=_executor(args, config),
                             display=_run_display(args.verbose))
    except ExecutorUnavailable as exc:
        print_error(str(exc))
        return 3
    console.print(f"{summary['ok']}/{summary['jobs']} jobs ok in {out}")
    for failure in summary["failed"]:
        err_console.print(f"[red]failed:[/red] {failure['job_id']} at {failure['failed_step']}:"
                          f" {failure['error']}", highlight=False)
    if summary["failed"]:
        err_console.print("re-run the same command to retry the failed jobs")
    return 0 if not summary["failed"] else 1


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


def _print_table(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> None:
    table = Table(title=title, header_style="bold", title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < 5 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def cmd_bench(args: argparse.Namespace) -> int:
    from harness import bench, runs
    from harness.variants import table as variant_table

    if args.spec is None and not args.from_run:
        raise UsageError("harness bench: give --spec, --from RUN_DIR, or both")
    speeds = [runs.read_training_speed(run) for run in args.from_run or []]
    name = load_spec(args.spec).name if args.spec else speeds[0]["spec"]
    out = args.out or Path("results") / "bench" / (
        f"{name}-{utc_now().replace(':', '').replace('-', '')}")
    try:
        result = bench.bench_spec(
            args.spec, backends=args.backends, providers=args.providers,
            batch_sizes=args.batch_sizes, run_dirs=args.from_run, out_dir=out,
            threads=args.threads, graph_optimization=args.graph_optimization,
            warmup=args.warmup, min_runs=args.min_runs, min_seconds=args.min_seconds,
            data_dir=args.data_dir, strict_providers=args.strict_providers,
            ort_variants=args.ort_variants, compile_modes=args.compile,
            accuracy_gate=args.accuracy_gate, limit_test=args.limit_test)
    except ValueError as exc:  # e.g. two runs of one backend, runs of different specs
        print_error(str(exc))
        return 2
    _print_table(f"Inference latency of {name} (speed-up: native p50 / ONNX Runtime p50)",
                 bench.LATENCY_COLUMNS, bench.summary_rows(result))
    for line in bench.problems(result):
        err_console.print(line, highlight=False, markup=False)
    if result["variants"]:
        _print_table(f"Variants of {name}: accuracy on the test set, gate "
                     f"{args.accuracy_gate:g} x the float32 accuracy",
                     variant_table.VARIANT_COLUMNS, variant_table.variant_rows(result))
        for line in variant_table.variant_problems(result):
            err_console.print(line, highlight=False, markup=False)
    if speeds:
        _print_table("Training speed of the runs (first epoch apart)", runs.TRAINING_COLUMNS,
                     runs.training_rows(speeds))
    console.print(f"wrote {bench.latency_path(out, name)}", highlight=False)
    statuses = {record["status"] for record in variant_table.all_records(result)}
    return 1 if "failed" in statuses else (0 if "ok" in statuses else 3)


# The one thread budget (harness.env.thread_budget), as every runtime applies it.
THREADS_HELP = ("compute threads for every runtime: N intra-op, 1 inter-op (TensorFlow, "
                "PyTorch, ONNX Runtime alike; default: every core this process may use)")


def _add_common_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=opt.folder,
                        help="dataset folder (default: $HARNESS_DATA_DIR or a user cache folder)")
    parser.add_argument("--limit-test", type=opt.limit("test"),
                        help="use the first N test images (default: all 10,000)")
    parser.add_argument("--threads", type=opt.threads, help=THREADS_HELP)


def _add_framework_policy_options(parser: argparse.ArgumentParser) -> None:
    """Maths and memory layout, chosen once for every framework and recorded."""
    parser.add_argument("--tf32", action="store_true",
                        help="let float32 matmuls and convolutions round to TF32 on GPUs that "
                             "have it, in both frameworks (default: off in both; TensorFlow's "
                             "own default is on, PyTorch's off for matmuls)")
    parser.add_argument("--layout", choices=["channels_last", "nchw"], default="channels_last",
                        help="memory layout of PyTorch's CNN activations and kernels (default: "
                             "channels_last, as Keras' NHWC tensors; Keras has no choice)")


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Where and how many jobs of `harness run` run at once (harness.run.executors)."""
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="local: jobs on this machine (default); ray: each job a Ray task "
                             "on a cluster (pip install -e '.[ray]')")
    parser.add_argument("--workers", type=opt.integer(1, opt.MAX_THREADS), default=1,
                        help="local: N jobs at once, each pinned to its own cores (its threads) "
                             "and, with CUDA, its own GPU (default 1: one job at a time, "
                             "unpinned)")
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


def _add_strict_providers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict-providers", action="store_true",
                        help="record a CUDA ONNX Runtime session that would run any node on the "
                             "CPU as unavailable instead of timing it (ORT's "
                             "session.disable_cpu_ep_fallback)")


def build_parser() -> argparse.ArgumentParser:
    from harness.backends import backend_names
    from harness.variants.catalog import ALL, COMPILE_MODES, DEFAULT_ACCURACY_GATE, ORT_VARIANTS

    parser = opt.Parser(
        prog="harness", description="Compare Keras and PyTorch honestly: one framework-neutral "
        "spec, the same weights, batches and maths in both, ONNX Runtime latency, one report.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list the model zoo").set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="print a spec's layers, output shapes and parameters")
    show.add_argument("spec", help="zoo name or path of a YAML spec")
    show.set_defaults(func=cmd_show)

    train = sub.add_parser("train", help="train and test one spec in one backend")
    train.add_argument("--spec", required=True, help="zoo name or path of a YAML spec")
    train.add_argument("--backend", required=True, choices=backend_names())
    train.add_argument("--epochs", type=opt.positive_int, help="default: the spec's")
    train.add_argument("--batch-size", type=opt.batch_size, help="default: the spec's")
    train.add_argument("--limit", type=opt.limit("training"),
                       help="train on the first N images")
    train.add_argument("--limit-test", type=opt.limit("test"),
                       help="test on the first N test images (default: all 10,000)")
    train.add_argument("--seed", type=opt.seed, help="default: the spec's train.seed")
    train.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    train.add_argument("--threads", type=opt.threads, help=THREADS_HELP)
    _add_framework_policy_options(train)
    train.add_argument("--data-dir", type=opt.folder,
                       help="dataset folder (default: $HARNESS_DATA_DIR or a user cache folder)")
    train.add_argument("--out", type=opt.folder,
                       help="output folder (default: under results/train/)")
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="export a model to ONNX and check its numbers")
    export.add_argument("--backend", required=True, choices=backend_names())
    export.add_argument("--spec", help="zoo name or YAML file (default: the run's spec)")
    export.add_argument("--from", dest="from_run", type=opt.training_run, metavar="RUN_DIR",
                        help="a `harness train` output folder (default: initial weights)")
    export.add_argument("--out", required=True, type=opt.output_file,
                        help="the .onnx file to write")
    export.add_argument("--opset", type=opt.opset, default=opt.DEFAULT_OPSET)
    _add_common_data_options(export)
    export.set_defaults(func=cmd_export)

    parity = sub.add_parser("parity", help="same weights in every backend, native and ONNX")
    parity.add_argument("--spec", help="zoo name or YAML file (default: the runs' spec)")
    parity.add_argument("--from", dest="from_run", type=opt.training_run, metavar="RUN_DIR",
                        action="append", help="a training run (repeatable; default: the "
                                              "spec's initial weights)")
    parity.add_argument("--opset", type=opt.opset, default=opt.DEFAULT_OPSET)
    _add_common_data_options(parity)
    parity.set_defaults(func=cmd_parity)

    run = sub.add_parser("run", help="the matrix: train, export, parity, latency per job; "
                                     "resumable")
    run.add_argument("--specs", type=opt.csv(str),
                     help="names, globs (cnn*), study:NAME (a study of the zoo), YAML paths, "
                          "or all")
    run.add_argument("--plan", type=opt.existing_file,
                     help="a YAML run plan: groups of specs with their seeds, and run options "
                          "(options given here override the plan's); instead of --specs")
    run.add_argument("--backends", type=opt.csv(str, backend_names()), default=backend_names(),
                     help=f"comma-separated (default: {','.join(backend_names())})")
    run.add_argument("--providers", type=opt.csv(str, ["cpu", "cuda"]), default=["cpu"],
                     help="ONNX Runtime providers for latency, comma-separated (default: cpu)")
    run.add_argument("--batch-sizes", type=opt.csv(opt.batch_size), default=[1, 32, 256],
                     help="latency batch sizes (default: 1,32,256)")
    run.add_argument("--seeds", type=opt.csv(opt.seed),
                     help="repeat every job with these seeds (default: the spec's seed)")
    run.add_argument("--epochs", type=opt.positive_int, help="default: each spec's")
    run.add_argument("--limit", type=opt.limit("training"), help="train on the first N images")
    run.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                     help="where the frameworks train")
    run.add_argument("--set", type=opt.set_override, action="append", metavar="PATH=V1[,V2...]",
                     help="override a spec field; lists expand into a grid (repeatable)")
    run.add_argument("--opset", type=opt.opset, default=opt.DEFAULT_OPSET,
                     help=f"ONNX opset (default: {opt.DEFAULT_OPSET})")
    run.add_argument("--latency-min-runs", type=opt.runs, default=20,
                     help="timed runs per latency figure, at least (default 20)")
    run.add_argument("--latency-min-seconds", type=opt.seconds, default=0.5,
                     help="seconds per latency figure, at least (default 0.5)")
    run.add_argument("--out", type=opt.folder,
                     help="run folder (default: results/run-<time>)")
    _add_executor_options(run)
    _add_strict_providers_option(run)
    _add_framework_policy_options(run)
    _add_common_data_options(run)
    run.set_defaults(func=cmd_run, run_parser=run)

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

    bench = sub.add_parser("bench", help="inference latency: ONNX Runtime (CPU, CUDA) vs each "
                                         "framework's own predictor")
    bench.add_argument("--spec", help="zoo name or YAML file (default: the runs' spec)")
    bench.add_argument("--backends", type=opt.csv(str, backend_names()),
                       default=backend_names())
    bench.add_argument("--providers", type=opt.csv(str, ["cpu", "cuda"]),
                       default=["cpu", "cuda"],
                       help="ONNX Runtime providers, and the framework device of each "
                            "(default: cpu,cuda; unavailable ones are recorded as such)")
    bench.add_argument("--batch-sizes", type=opt.csv(opt.batch_size), default=[1, 32, 256])
    bench.add_argument("--from", dest="from_run", type=opt.training_run, metavar="RUN_DIR",
                       action="append",
                       help="a training run: its weights, and its training speed is printed "
                            "(repeatable, one per backend; default: initial weights)")
    bench.add_argument("--warmup", type=opt.warmup, default=10)
    bench.add_argument("--min-runs", type=opt.runs, default=50)
    bench.add_argument("--min-seconds", type=opt.seconds, default=1.0,
                       help="timed seconds per figure, at least (default 1.0)")
    bench.add_argument("--graph-optimization", default="all",
                       choices=["disable", "basic", "extended", "all"])
    bench.add_argument("--threads", type=opt.threads, help=THREADS_HELP)
    bench.add_argument("--compile", type=opt.csv(str, list(COMPILE_MODES)), default=["eager"],
                       help="framework modes: eager (always timed: the reference of every "
                            "speed-up), compiled (torch.compile/inductor, Keras XLA)")
    bench.add_argument("--ort-variants", type=opt.csv(str, [ALL, *ORT_VARIANTS]), default=[],
                       help=f"ONNX Runtime variants of each export, or {ALL}: "
                            f"{', '.join(ORT_VARIANTS)}")
    bench.add_argument("--accuracy-gate", type=opt.number(0, 1), default=DEFAULT_ACCURACY_GATE,
                       help="mark a variant below this fraction of the float32 model's "
                            f"accuracy `fails accuracy` (default {DEFAULT_ACCURACY_GATE})")
    bench.add_argument("--limit-test", type=opt.limit("test"),
                       help="score variants on the first N test images (default: all)")
    _add_strict_providers_option(bench)
    bench.add_argument("--data-dir", type=opt.folder,
                       help="dataset folder (default: $HARNESS_DATA_DIR or a user cache folder)")
    bench.add_argument("--out", type=opt.folder,
                       help="default: results/bench/<spec>-<time>")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    from harness.backends import BackendUnavailable
    from harness.data import DataError
    from harness.exporting import ExportError
    from harness.ort import ProviderUnavailable

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "plan", None) is not None:
            args = _with_plan(parser, args, sys.argv[1:] if argv is None else argv)
        return args.func(args)
    except (SpecError, UsageError) as exc:  # a spec: one line per problem, naming the file
        print_error(str(exc))
        return 2
    except (BackendUnavailable, DataError, ProviderUnavailable) as exc:
        print_error(str(exc))
        return 3
    except ExportError as exc:
        print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
