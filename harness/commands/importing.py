"""`harness import`: a trained model file as a spec (and its weights), proven against the file."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from harness.commands import args as opt
from harness.commands.common import add_download_option, add_run_option, console, print_error
from harness.errors import UsageError
from harness.run import options as opts
from harness.spec.schema import DATASETS


def _import(args: argparse.Namespace) -> tuple:
    """(reader, imported model, written spec); a file that cannot be imported is a
    UsageError, one line per problem (exit 2), and nothing is written."""
    from harness.importing import reader_for
    from harness.importing.imported import ModelImportError
    from harness.importing.writing import write_spec

    try:
        reader = reader_for(args.model)
        imported = reader.read(args.model)
    except ModelImportError as exc:
        raise UsageError(str(exc)) from None
    fit = {"batch_size": args.batch_size, "epochs": args.epochs}
    written = write_spec(imported, args.out, args.name, args.dataset, fit, args.weights)
    return reader, imported, written


def _table(rows: list) -> Table:
    from harness.importing.proof import IMPORT_TOLERANCE

    table = Table(title=f"Proof of the import (max |diff| <= {IMPORT_TOLERANCE:.0e} on the "
                        "original's outputs)")
    for column in ("backend", "max |diff|", "argmax agreement", "verdict"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for row in rows:
        if row.skipped:
            table.add_row(row.backend, "-", "-", f"skipped ({row.skipped})")
            continue
        verdict = row.verdict if row.passed else f"[red]{row.verdict}[/red]"
        table.add_row(row.backend, f"{row.max_abs_diff:.2e}", f"{row.argmax_agreement:.2%}",
                      verdict)
    return table


def cmd_import(args: argparse.Namespace) -> int:
    from harness.importing.proof import prove, sample_inputs

    reader, imported, written = _import(args)
    for note in written.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    if args.fit_defaulted:
        console.print(f"note: {' and '.join(args.fit_defaulted)}: Keras fit's default (a model "
                      "file holds no batch size or epochs; --batch-size, --epochs set them)",
                      highlight=False, soft_wrap=True)
    extra = f" and {written.weights_path}" if written.weights_path else ""
    console.print(f"wrote {written.path}{extra}: {len(written.spec.layers)} layers",
                  highlight=False, soft_wrap=True)
    x = sample_inputs(written.spec, args.samples, args.data_dir, args.download)
    rows = prove(written.spec, imported.weights, reader, args.model, x, args.backends)
    console.print(_table(rows))
    if all(row.passed for row in rows):
        return 0
    print_error(f"the imported spec computes otherwise than {args.model} in "
                f"{', '.join(row.backend for row in rows if not row.passed)}")
    return 1


def register(sub: argparse._SubParsersAction) -> None:
    from harness.backends import backend_names

    parser = sub.add_parser("import", help="a trained Keras (.keras, .h5) or ONNX model as a "
                            "spec, proven in every installed backend")
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="the model file: .keras, .h5 (Keras 3) or .onnx")
    parser.add_argument("--out", required=True, type=opt.output_file,
                        help="the spec YAML to write")
    parser.add_argument("--weights", action="store_true",
                        help="keep the model's weights as the spec's initial weights "
                             "(<stem>.weights.npz beside the spec, checksummed)")
    parser.add_argument("--name", help="the spec's name (default: the file name of --out)")
    parser.add_argument("--dataset", choices=DATASETS, default=DATASETS[0],
                        help="the dataset the spec trains on (default: %(default)s)")
    parser.add_argument("--batch-size", type=opt.integer(1), default=None,
                        help="the spec's batch size (default: 32, Keras fit's)")
    parser.add_argument("--epochs", type=opt.integer(1), default=None,
                        help="the spec's epochs (default: 1, Keras fit's)")
    parser.add_argument("--samples", type=opt.integer(1, 10_000), default=256,
                        help="test images the proof compares outputs on (default: 256)")
    parser.add_argument("--backends", type=opt.csv(str, backend_names()), default=None,
                        help="backends the proof builds the spec in (default: all; those not "
                             "installed are skipped)")
    add_run_option(parser, opts.BY_FIELD["data_dir"])
    add_download_option(parser)
    parser.set_defaults(func=_with_fit_defaults)


def _with_fit_defaults(args: argparse.Namespace) -> int:
    """A model file holds no batch size or epochs: Keras fit's defaults where not given."""
    from harness.importing.keras_training import DEFAULT_FIT

    args.fit_defaulted = [f"{key} {value}" for key, value in DEFAULT_FIT.items()
                          if getattr(args, key) is None]
    args.batch_size = args.batch_size or DEFAULT_FIT["batch_size"]
    args.epochs = args.epochs or DEFAULT_FIT["epochs"]
    return cmd_import(args)
