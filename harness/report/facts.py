"""Framework facts: what each framework does differently that a timing or curve gap may come
from, stated beside the timing tables, with the switches every job ran with as read back from
the frameworks (compile mode, TF32, memory layout, threads, where the data lived)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.report import tables as T
from harness.report.format import MISSING
from harness.training import EPOCH_TIMING

# The maths and implementation differences the harness does not remove (docs/specs.md: "How the
# backends are made to agree" lists what it does remove).
FACTS = (
    "Timed region, the same in both frameworks: the optimizer steps of one epoch over batches "
    "already on the device, gathered in the epoch's order before the clock starts (no data "
    "pipeline, validation or per-epoch set-up). Steady epoch = median of the epochs after the "
    "first; the first epoch (tracing, compilation, warm-up) is shown apart, and a run of one "
    f"epoch has no steady figure ({MISSING}). Records name this definition: {EPOCH_TIMING}.",
    "BatchNorm: Keras 3 on TensorFlow is unfused (moments and tf.nn.batch_normalization as "
    "separate ops); PyTorch runs its fused batch_norm kernel, plus an O(channels) correction "
    "that makes its moving variance Keras'.",
    "Softmax: Keras computes the output softmax in every training step's forward pass and the "
    "loss from the logits it caches; PyTorch's step stops at the logits (cross_entropy).",
    "Dropout: each framework draws its masks from its own random stream, so specs with dropout "
    "train on different masks from the same seed; their curves differ by more than rounding.",
    "Keras on JAX and on PyTorch (keras-jax, keras-torch) run the same Keras model, optimizers "
    "and train step as Keras on TensorFlow, each in a process of its own, with their backend's "
    "default compile mode: XLA for JAX (the first epoch holds the compilations: compile column),"
    " eager for PyTorch. Their cross-entropy comes from the softmax's probabilities clipped to "
    "[1e-7, 1 − 1e-7], not from cached logits; Keras on PyTorch refuses a 'same' average pool "
    "that pads asymmetrically, whose border windows it computes otherwise.",
    "Compile mode, math mode (TF32: float32 matmuls and convolutions rounded to TF32 on GPUs "
    "that have it), memory layout (Keras' tensors are NHWC; PyTorch's CNN layout is chosen "
    "with --layout) and threads (N intra-op, 1 inter-op in every runtime): as each job "
    "recorded them, below.",
)
SETTING_COLUMNS = ["backend", "device", "compile_mode", "tf32", "layout", "threads",
                   "data_device", "jobs"]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    if _missing(value):
        return MISSING
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _threads(intra: Any, inter: Any) -> str:
    if _missing(intra) and _missing(inter):
        return MISSING
    return f"{_text(intra)} intra-op, {_text(inter)} inter-op"


def settings_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per backend x device x distinct setting: what the trained jobs ran with."""
    done = T.trained(jobs)
    if done.empty:
        return pd.DataFrame(columns=SETTING_COLUMNS)
    rows = pd.DataFrame({
        "backend": done["backend"].map(_text), "device": done["device"].map(_text),
        "compile_mode": done["compile_mode"].map(_text), "tf32": done["tf32"].map(_text),
        "layout": done["layout"].map(_text),
        "threads": [_threads(a, b) for a, b in zip(done["intra_op_threads"],
                                                   done["inter_op_threads"], strict=True)],
        "data_device": done["data_device"].map(_text), "job_id": done["job_id"]})
    keys = SETTING_COLUMNS[:-1]
    table = rows.groupby(keys, dropna=False)["job_id"].nunique().rename("jobs")
    return table.reset_index()[SETTING_COLUMNS]


def steady_note(jobs: pd.DataFrame) -> str:
    """Why some steady figures are missing: the trained jobs that ran fewer than two epochs."""
    done = T.trained(jobs)
    short = int((done["trained_epochs"] < 2).sum())
    if not short:
        return ""
    return (f"{short} job(s) trained a single epoch: they have no steady epoch time "
            f"({MISSING}), since their only epoch includes tracing, compilation and warm-up.")
