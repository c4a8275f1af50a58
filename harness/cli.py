"""`harness` command line: each subcommand parses its arguments and calls one library function.

Frameworks are imported only by the commands that need them, so `harness list` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.onnx_io import DEFAULT_OPSET
from harness.spec import SpecError, infer, list_specs, load_spec, spec_hash, zoo_dir
from harness.spec.shapes import describe

# Piped output (files, CI logs) gets room for whole tables rather than rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


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
                         batch_size=args.batch_size)
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
        raise SystemExit("harness export: error: give --spec, --from RUN_DIR, or both")
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


def _add_common_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path,
                        help="dataset folder (default: $HARNESS_DATA_DIR or a user cache folder)")
    parser.add_argument("--limit-test", type=_positive_int,
                        help="use the first N test images (default: all 10,000)")
    parser.add_argument("--threads", type=_positive_int, help="CPU threads for every framework")


def build_parser() -> argparse.ArgumentParser:
    from harness.backends import backend_names

    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list the model zoo").set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="print a spec's layers, output shapes and parameters")
    show.add_argument("spec", help="zoo name or path of a YAML spec")
    show.set_defaults(func=cmd_show)

    train = sub.add_parser("train", help="train and test one spec in one backend")
    train.add_argument("--spec", required=True, help="zoo name or path of a YAML spec")
    train.add_argument("--backend", required=True, choices=backend_names())
    train.add_argument("--epochs", type=_positive_int, help="default: the spec's")
    train.add_argument("--batch-size", type=_positive_int, help="default: the spec's")
    train.add_argument("--limit", type=_positive_int, help="train on the first N images")
    train.add_argument("--limit-test", type=_positive_int,
                       help="test on the first N test images (default: all 10,000)")
    train.add_argument("--seed", type=_non_negative_int, help="default: the spec's train.seed")
    train.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    train.add_argument("--threads", type=_positive_int,
                       help="CPU threads, applied alike to both frameworks (default: all cores)")
    train.add_argument("--data-dir", type=Path,
                       help="dataset folder (default: $HARNESS_DATA_DIR or a user cache folder)")
    train.add_argument("--out", type=Path, help="output folder (default: under results/train/)")
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="export a model to ONNX and check its numbers")
    export.add_argument("--backend", required=True, choices=backend_names())
    export.add_argument("--spec", help="zoo name or YAML file (default: the run's spec)")
    export.add_argument("--from", dest="from_run", type=Path, metavar="RUN_DIR",
                        help="a `harness train` output folder (default: initial weights)")
    export.add_argument("--out", required=True, type=Path, help="the .onnx file to write")
    export.add_argument("--opset", type=_positive_int, default=DEFAULT_OPSET)
    _add_common_data_options(export)
    export.set_defaults(func=cmd_export)

    parity = sub.add_parser("parity", help="same weights in every backend, native and ONNX")
    parity.add_argument("--spec", help="zoo name or YAML file (default: the runs' spec)")
    parity.add_argument("--from", dest="from_run", type=Path, metavar="RUN_DIR",
                        action="append", help="a training run (repeatable; default: the "
                                              "spec's initial weights)")
    parity.add_argument("--opset", type=_positive_int, default=DEFAULT_OPSET)
    _add_common_data_options(parity)
    parity.set_defaults(func=cmd_parity)
    return parser


def main(argv: list[str] | None = None) -> int:
    from harness.backends import BackendUnavailable
    from harness.data import DataError
    from harness.exporting import ExportError
    from harness.ort import ProviderUnavailable

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpecError as exc:
        err_console.print(f"[red]error:[/red] invalid spec\n{exc}", markup=True, highlight=False)
        return 2
    except (BackendUnavailable, DataError, ProviderUnavailable) as exc:
        err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 3
    except ExportError as exc:
        err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
