"""`harness train`: train and test one spec in one backend."""

from __future__ import annotations

import argparse

from harness import cli_args as opt
from harness.commands.common import (
    add_common_data_options,
    add_framework_policy_options,
    console,
    writing_into,
)
from harness.spec import load_spec


def _print_epoch(record: object, epochs: int) -> None:
    val = ""
    if record.val_loss is not None:
        val = f"  val_loss {record.val_loss:.4f}  val_acc {record.val_accuracy:.4f}"
    console.print(f"epoch {record.epoch:>3}/{epochs}  loss {record.train_loss:.4f}  "
                  f"acc {record.train_accuracy:.4f}{val}  {record.seconds:.2f}s")


def cmd_train(args: argparse.Namespace) -> int:
    from harness.training import TrainConfig, default_out_dir, train_and_evaluate

    config = TrainConfig(backend=args.backend, device=args.device, epochs=args.epochs,
                         seed=args.seed, limit=args.limit, limit_test=args.limit_test,
                         threads=args.threads, data_dir=args.data_dir,
                         batch_size=args.batch_size, tf32=args.tf32, layout=args.layout,
                         compile=args.compile)
    spec = load_spec(args.spec)
    console.print(f"training {spec.name} with {args.backend} ({args.compile}) on {args.device}")
    # the default output folder is named when training ends; the folder that will hold it
    with writing_into(args.out or default_out_dir(spec, config, seed=0).parent):
        outcome = train_and_evaluate(spec, config, out_dir=args.out, on_epoch=_print_epoch,
                                     checkpoint_dir=args.checkpoint)
    metrics = outcome.metrics
    console.print(f"test_loss {metrics['test_loss']:.4f}  test_accuracy "
                  f"{metrics['test_accuracy']:.4f}  ({metrics['n_test']} test images)")
    console.print(f"wrote {outcome.out_dir / 'metrics.json'} and {metrics['model_file']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from harness.backends import backend_names
    from harness.training import COMPILE_MODES, EAGER

    train = sub.add_parser("train", help="train and test one spec in one backend")
    train.add_argument("--spec", required=True, help="zoo name or path of a YAML spec")
    train.add_argument("--backend", required=True, choices=backend_names())
    train.add_argument("--epochs", type=opt.positive_int, help="default: the spec's")
    train.add_argument("--batch-size", type=opt.batch_size, help="default: the spec's")
    train.add_argument("--limit", type=opt.limit("training"),
                       help="train on the first N images")
    train.add_argument("--seed", type=opt.seed, help="default: the spec's train.seed")
    train.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    train.add_argument("--compile", choices=COMPILE_MODES, default=EAGER,
                       help="eager (default), or compiled: torch.compile (inductor), Keras "
                            "jit_compile=True (XLA); the first epoch holds the compilation")
    add_framework_policy_options(train)
    add_common_data_options(train, "test on the first N test images")
    train.add_argument("--out", type=opt.output_folder,
                       help="output folder (default: under results/train/)")
    train.add_argument("--checkpoint", type=opt.output_folder, metavar="DIR",
                       help="save the training state in DIR after every epoch; after an "
                            "interruption the same command continues from the last finished "
                            "epoch (DIR is removed when the training ends)")
    train.set_defaults(func=cmd_train)
