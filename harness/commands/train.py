"""`harness train`: train and test one spec in one backend."""

from __future__ import annotations

import argparse
from typing import Any

from harness.commands import args as opt
from harness.commands.common import (
    add_common_data_options,
    add_download_option,
    add_framework_policy_options,
    add_spec_override_options,
    console,
    spec_from_options,
    writing_into,
)
from harness.measure.step_windows import recorded_windows, steady_step_time
from harness.training import COMPILE_MODES, EAGER, METRICS_FILE, EpochRecord, TrainOutcome

# the steady figure is the median of the epochs after the first (harness.training.epoch_timing)
NO_STEADY = ("1 epoch: no steady epoch (give --epochs 2 or more; the step time below needs "
             "only one)")


def _print_epoch(record: EpochRecord, epochs: int) -> None:
    val = ""
    if record.val_loss is not None:
        val = f"  val_loss {record.val_loss:.4f}  val_acc {record.val_accuracy:.4f}"
    console.print(f"epoch {record.epoch:>3}/{epochs}  loss {record.train_loss:.4f}  "
                  f"acc {record.train_accuracy:.4f}{val}  {record.seconds:.2f}s")


def _print_summary(outcome: TrainOutcome, device: str) -> None:
    """What the training came to, read from its record (the mode as the backend reported it),
    and the commands that take its folder."""
    metrics, out = outcome.metrics, outcome.out_dir
    timing, backend = metrics["timing"], metrics["backend"]
    steady, epochs = timing["steady_epoch_seconds"], len(metrics["history"])
    steady_epochs = "epoch 2" if epochs == 2 else f"median of epochs 2 to {epochs}"
    speed = NO_STEADY if steady is None else f"steady {steady:.3g} s ({steady_epochs})"
    step = steady_step_time(recorded_windows(metrics["history"]))
    lines = [
        f"done: {metrics['spec']['name']} with {backend} "
        f"({metrics['environment']['backend'].get('compile_mode')}) on {device}, "
        f"{epochs} epoch{'s' if epochs > 1 else ''} on {metrics['n_train']:,} training images",
        f"  test_accuracy {metrics['test_accuracy']:.4f}  test_loss {metrics['test_loss']:.4f}"
        f"  ({metrics['n_test']:,} test images)",
        f"  epoch seconds: first {timing['first_epoch_seconds']:.3g} s (warm-up included); "
        f"{speed}",
        "  training step: " + (step.describe() + " (median over its step windows, compilation "
                               "and the first window apart)" if step else "not timed in windows"),
        f"  wrote {out / METRICS_FILE} (the record) and {metrics['model_file']}",
        f"next: harness export --backend {backend} --from {out} --out {out / 'model.onnx'}"
        "    (ONNX file, checked against the framework)",
        f"      harness bench --from {out}    (inference latency: ONNX Runtime vs each "
        "framework)",
    ]
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


def cmd_train(args: argparse.Namespace) -> int:
    from harness.training import TrainConfig, default_out_dir, train_and_evaluate

    spec = spec_from_options(args)
    config = TrainConfig(backend=args.backend, device=args.device, epochs=args.epochs,
                         seed=args.seed, limit=args.limit, limit_test=args.limit_test,
                         threads=args.threads, data_dir=args.data_dir,
                         batch_size=args.batch_size, tf32=args.tf32, layout=args.layout,
                         compile=args.compile, download=args.download)

    def print_header(environment: dict[str, Any]) -> None:  # the mode the record will hold
        console.print(f"training {spec.name} with {args.backend} "
                      f"({environment['compile_mode']}) on {args.device}", highlight=False,
                      markup=False)

    # the default output folder is named when training ends; the folder that will hold it
    with writing_into(args.out or default_out_dir(spec, config, seed=0).parent):
        outcome = train_and_evaluate(spec, config, out_dir=args.out, on_epoch=_print_epoch,
                                     checkpoint_dir=args.checkpoint, on_start=print_header)
    _print_summary(outcome, args.device)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from harness.backends import backend_names

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
    add_spec_override_options(train)
    add_framework_policy_options(train)
    add_common_data_options(train, "test on the first N test images")
    add_download_option(train)
    train.add_argument("--out", type=opt.output_folder,
                       help="output folder (default: under results/train/)")
    train.add_argument("--checkpoint", type=opt.output_folder, metavar="DIR",
                       help="save the training state in DIR after every epoch; after an "
                            "interruption the same command continues from the last finished "
                            "epoch (DIR is removed when the training ends)")
    train.set_defaults(func=cmd_train)
