"""`harness export` and `harness parity`: ONNX files and their numbers against the frameworks."""

from __future__ import annotations

import argparse

from rich.table import Table

from harness.commands import args as opt
from harness.commands.common import (
    add_common_data_options,
    add_download_option,
    add_spec_override_options,
    console,
    err_console,
    spec_from_options,
)
from harness.errors import UsageError


def cmd_export(args: argparse.Namespace) -> int:
    from harness.export.driver import export_model

    if args.spec is None and args.from_run is None:
        raise UsageError("harness export: give --spec, --from RUN_DIR, or both")
    spec = spec_from_options(args)
    record = export_model(spec, args.backend, args.out,
                          run_dir=args.from_run, opset=args.opset, data_dir=args.data_dir,
                          limit_test=args.limit_test, threads=args.threads,
                          download=args.download)
    parity, onnx_info = record["parity"], record["onnx"]
    weights = record["weights"]
    origin = ("initial weights (untrained: fine for latency, not for accuracy)"
              if weights["source"] == "initial"
              else f"weights trained in {weights['trained_backend']} ({args.from_run})")
    if weights["source"] == "initial" and spec is not None and spec.initial_weights:
        origin = f"the spec's initial weights ({spec.initial_weights.path})"
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
    from harness.export.cross_backend import cross_parity

    if args.spec is None and not args.from_run:
        raise UsageError("harness parity: give --spec, --from RUN_DIR, or both")
    rows = cross_parity(args.spec, args.from_run, data_dir=args.data_dir,
                        limit_test=args.limit_test, opset=args.opset, threads=args.threads,
                        backends=args.backends)
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


def register(sub: argparse._SubParsersAction) -> None:
    from harness.backends import backend_names

    export = sub.add_parser("export", help="export a model to ONNX and check its numbers")
    export.add_argument("--backend", required=True, choices=backend_names())
    export.add_argument("--spec", help="zoo name or YAML file (default: the run's spec)")
    export.add_argument("--from", dest="from_run", type=opt.training_run, metavar="RUN_DIR",
                        help="a `harness train` output folder (default: initial weights)")
    export.add_argument("--out", required=True, type=opt.output_file,
                        help="the .onnx file to write")
    export.add_argument("--opset", type=opt.opset, default=opt.DEFAULT_OPSET)
    add_spec_override_options(export)
    add_common_data_options(export)
    add_download_option(export)
    export.set_defaults(func=cmd_export)

    parity = sub.add_parser("parity", help="same weights in every backend, native and ONNX")
    parity.add_argument("--spec", help="zoo name or YAML file (default: the runs' spec)")
    parity.add_argument("--from", dest="from_run", type=opt.training_run, metavar="RUN_DIR",
                        action="append", help="a training run (repeatable; default: the "
                                              "spec's initial weights)")
    parity.add_argument("--backends", type=opt.csv(str, backend_names()), default=backend_names(),
                        help=f"comma-separated (default: {','.join(backend_names())}); each "
                             "Keras backend after the first runs in a process of its own")
    parity.add_argument("--opset", type=opt.opset, default=opt.DEFAULT_OPSET)
    add_common_data_options(parity)
    parity.set_defaults(func=cmd_parity)
