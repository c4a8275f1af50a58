"""`harness bench`: inference latency of one spec, ONNX Runtime vs each framework's own
predictor, its variants, and the training speed of the runs it was given."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from harness.commands import args as opt
from harness.commands.common import (
    add_common_data_options,
    add_download_option,
    add_spec_override_options,
    add_strict_providers_option,
    add_variant_options,
    console,
    err_console,
    print_error,
    spec_from_options,
)
from harness.errors import UsageError
from harness.measure.environment import utc_now


def _print_table(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> None:
    table = Table(title=title, header_style="bold", title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < 5 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.latency import bench
    from harness.latency import records as bench_records
    from harness.latency.variants import table as variant_table
    from harness.training import runs

    if args.spec is None and not args.from_run:
        raise UsageError("harness bench: give --spec, --from RUN_DIR, or both")
    spec = spec_from_options(args)
    speeds = [runs.read_training_speed(run) for run in args.from_run or []]
    name = spec.name if spec else speeds[0]["spec"]
    out = args.out or Path("results") / "bench" / (
        f"{name}-{utc_now().replace(':', '').replace('-', '')}")
    try:
        result = bench.bench_spec(
            spec, backends=args.backends, providers=args.providers,
            batch_sizes=args.batch_sizes, run_dirs=args.from_run, out_dir=out,
            threads=args.threads, graph_optimization=args.graph_optimization,
            warmup=args.warmup, min_runs=args.min_runs, min_seconds=args.min_seconds,
            data_dir=args.data_dir, strict_providers=args.strict_providers,
            ort_variants=args.ort_variants, compile_modes=args.compile,
            accuracy_gate=args.accuracy_gate, limit_test=args.limit_test,
            download=args.download)
    except ValueError as exc:  # e.g. two runs of one backend, runs of different specs
        print_error(str(exc))
        return 2
    _print_table(f"Inference latency of {name} (speed-up: native p50 / ONNX Runtime p50)",
                 bench_records.LATENCY_COLUMNS, bench_records.summary_rows(result))
    for line in bench_records.problems(result):
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


def register(sub: argparse._SubParsersAction) -> None:
    from harness.backends import backend_names
    from harness.latency.variants.catalog import COMPILE_MODES

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
    bench.add_argument("--compile", type=opt.csv(str, list(COMPILE_MODES)), default=["eager"],
                       help="framework modes: eager (always timed: the reference of every "
                            "speed-up), compiled (torch.compile/inductor, Keras XLA)")
    add_variant_options(bench)
    add_strict_providers_option(bench)
    add_spec_override_options(bench)
    add_common_data_options(bench, "score variants on the first N test images")
    add_download_option(bench)
    bench.add_argument("--out", type=opt.output_folder,
                       help="default: results/bench/<spec>-<time>")
    bench.set_defaults(func=cmd_bench)
