"""`harness list` and `harness show`: the model zoo and one spec."""

from __future__ import annotations

import argparse

from rich.table import Table

from harness.commands.common import console
from harness.spec import infer, list_specs, load_spec, spec_hash, zoo_dir
from harness.spec.loader import ALL_ZOOS, ZOOS
from harness.spec.shapes import describe


def cmd_list(args: argparse.Namespace) -> int:
    names = list_specs(args.zoo)
    where = "every zoo" if args.zoo == ALL_ZOOS else f"{args.zoo} zoo, {zoo_dir(args.zoo)}"
    table = Table(title=f"Model zoo: {len(names)} specs ({where})", box=None,
                  header_style="bold", title_justify="left")
    table.add_column("spec", no_wrap=True)
    for column in ("dataset", "input", "layers", "params", "optimizer", "batch", "epochs"):
        table.add_column(column, no_wrap=True, justify="left" if column in (
            "dataset", "input", "optimizer") else "right")
    for name in names:
        spec = load_spec(name)
        shape = "x".join(str(d) for d in spec.input.shape)
        table.add_row(name, spec.input.dataset_label, shape, str(len(spec.layers)),
                      f"{infer(spec).total_params:,}", spec.train.optimizer.name,
                      str(spec.train.batch_size), str(spec.train.epochs))
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
    graph = not summary.is_chain
    if graph:  # as Keras' summary of a functional model: which layers each one reads
        table.add_column("Connected to")
    table.add_row("", "input", str((None, *summary.input_shape)), "0", *([""] if graph else []))
    for info in summary.layers:
        name = f" ({info.layer.name})" if info.layer.name else ""
        row = [str(info.index), describe(info.layer) + name, str((None, *info.output_shape)),
               f"{info.params:,}"]
        if graph:
            row.append(", ".join("input" if i < 0 else str(i) for i in info.inputs))
        table.add_row(*row)
    console.print(table)
    console.print(f" Dataset: {spec.input.dataset_label}")
    console.print(f" Total params: {summary.total_params:,}")
    console.print(f" Trainable params: {summary.trainable_params:,}")
    console.print(f" Non-trainable params: {summary.non_trainable_params:,}")
    train = spec.train
    hyper = ", ".join(f"{k}={v}" for k, v in train.optimizer.model_dump().items() if k != "name")
    console.print(f" Optimizer: {train.optimizer.name}({hyper})")
    if train.schedule is not None:
        fields = ", ".join(f"{k}={v}" for k, v in train.schedule.model_dump().items()
                           if k != "name")
        console.print(f" Schedule: {train.schedule.name}({fields})")
    console.print(f" Loss: {train.loss}; batch {train.batch_size}; {train.epochs} epochs; "
                  f"seed {train.seed}; validation: {train.validation}")
    if spec.initial_weights is not None:
        console.print(f" Initial weights: {spec.initial_weights.path} (sha256 "
                      f"{spec.initial_weights.sha256}), not the initializers' draw",
                      highlight=False, soft_wrap=True)
    if spec.description:
        console.print(f" {spec.description}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    listing = sub.add_parser("list", help="list the model zoo")
    listing.add_argument("--zoo", choices=[*ZOOS, ALL_ZOOS], default=ZOOS[0],
                         help="which zoo: the MNIST notebooks' models (default), the modern "
                              "architectures, or all")
    listing.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="print a spec's layers, output shapes and parameters")
    show.add_argument("spec", help="zoo name or path of a YAML spec")
    show.set_defaults(func=cmd_show)
