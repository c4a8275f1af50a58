"""Train one spec in one backend and evaluate it: the library behind `harness train`.

Both backends start from the same initial weights (drawn once in numpy from the spec) and see
the training set in the same order every epoch, so the remaining differences between their
curves come from the frameworks themselves (dropout masks, kernels, float rounding).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import data as data_module
from harness.backends import Backend, get_backend
from harness.backends.base import Evaluation
from harness.measure.environment import environment, utc_now
from harness.measure.machine_load import load_mark, load_since
from harness.measure.memory import track_memory
from harness.records.folders import (
    FINAL_WEIGHTS_FILE,
    METRICS_FILE,
    SPEC_FILE,
    TEST_OUTPUTS_FILE,
)
from harness.records.io import RESULT_SCHEMA_VERSION, write_json_atomic
from harness.spec import ModelSpec, infer, initial_weights, load_spec, spec_hash
from harness.spec.initializers import save_weights
from harness.spec.loader import dump_spec
from harness.spec.shapes import num_classes
from harness.training.checkpoint import Progress, TrainingCheckpoint
from harness.training.config import TrainConfig, compiled_model
from harness.training.evaluation import TestPass
from harness.training.trained import TrainedModel

# What an epoch's time is, named in every record and matrix job: the optimizer steps of one
# epoch over batches already on the device (no data set-up, no validation), and the steady
# figure the median of the epochs after the first.
EPOCH_TIMING = "optimizer-steps-only; steady=median(epochs 2..N)"


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    # others' CPU use while the epoch trained (harness.measure.machine_load); "noisy": a busy
    # machine
    machine_load: dict[str, Any] | None = None
    # the epoch's steps in windows (harness.backends.base.EpochResult): the steady time per
    # step with its interval, even from one epoch (harness.measure.step_windows)
    window_seconds: tuple[float, ...] = ()
    window_steps: tuple[int, ...] = ()
    window_first_call: tuple[bool, ...] = ()


@dataclass
class TrainOutcome:
    """The training record (`metrics`, metrics.json), the folder of its files, and the trained
    model itself (what a matrix job's export and latency take)."""

    metrics: dict[str, Any]
    out_dir: Path
    trained: TrainedModel
    history: list[EpochRecord] = field(default_factory=list)

    def __getstate__(self) -> dict[str, Any]:
        # The trained model (framework objects) stays in the process that trained it: an
        # outcome a worker sends back (harness.backends.isolation) carries no `trained`.
        return {**self.__dict__, "trained": None}


ProgressCallback = Callable[[EpochRecord, int], None]


def as_spec(spec_ref: str | Path | ModelSpec) -> ModelSpec:
    """A spec given as itself (one --set changed), a zoo name or a YAML file."""
    return spec_ref if isinstance(spec_ref, ModelSpec) else load_spec(spec_ref)


def default_out_dir(spec: ModelSpec, config: TrainConfig, seed: int) -> Path:
    stamp = utc_now().replace(":", "").replace("-", "")
    run_name = f"{config.backend}-{config.device}-seed{seed}-{stamp}"
    return Path("results") / "train" / spec.name / run_name


def _run_epochs(backend: Backend, model: Any, spec: ModelSpec, arrays: Any,
                test: TestPass | None, epochs: int, seed: int, batch_size: int,
                on_epoch: ProgressCallback | None,
                history: list[EpochRecord] | None = None,
                after_epoch: Callable[[], None] | None = None
                ) -> tuple[list[EpochRecord], Evaluation | None]:
    """Train the epochs after those in `history` (restored from a checkpoint), appending each
    one's record and calling `after_epoch`; every epoch's record, and the last epoch's
    validation (None without one)."""
    history = [] if history is None else history
    train_data = backend.to_native(arrays.x_train, arrays.y_train)
    validate = _validation_pass(backend, spec, arrays, test, batch_size)
    validation = None
    for epoch in range(len(history), epochs):
        order = data_module.epoch_order(len(arrays.y_train), epoch, seed, spec.train.shuffle)
        mark = load_mark()
        result = backend.train_epoch(model, train_data, order, batch_size)
        load = load_since(mark)
        if validate is not None:
            validation = validate(model)
        record = EpochRecord(epoch + 1, result.loss, result.accuracy,
                             validation.loss if validation else None,
                             validation.accuracy if validation else None, result.seconds, load,
                             result.window_seconds, result.window_steps,
                             result.window_first_call)
        history.append(record)
        if after_epoch is not None:
            after_epoch()
        if on_epoch is not None:
            on_epoch(record, epochs)
    return history, validation


def _validation_pass(backend: Backend, spec: ModelSpec, arrays: Any, test: TestPass | None,
                     batch_size: int) -> TestPass | None:
    """What each epoch validates on: the test set (as the notebooks did), the held-out part of
    the training set (a validation split, as Keras' validation_split), or nothing."""
    if spec.train.validation_split is not None:
        return TestPass(backend, arrays.x_val, arrays.y_val, batch_size)
    return test if spec.train.validation == "test" else None


def _training_identity(spec: ModelSpec, config: TrainConfig, seed: int, epochs: int,
                       batch_size: int) -> dict[str, Any]:
    """What a checkpoint must match to be resumed from: everything that decides the numbers
    (the data folder aside: the data sets are checked by their checksums)."""
    return {"spec_hash": spec_hash(spec), "spec": spec.name, "backend": config.backend,
            "device": config.device, "seed": seed, "epochs": epochs, "batch_size": batch_size,
            "limit": config.limit, "limit_test": config.limit_test, "threads": config.threads,
            "tf32": config.tf32, "layout": config.layout, "compile": config.compile}


@dataclass
class _Setup:
    """A spec built in a backend from its initial weights, with its data: what training needs.
    `model` is what trains (a compiled twin in the compiled mode), `eager` the model built."""

    spec: ModelSpec
    seed: int
    epochs: int
    batch_size: int
    arrays: Any
    backend: Backend
    eager: Any
    model: Any
    start_weights: Any


def _set_up(spec: ModelSpec, config: TrainConfig) -> _Setup:
    seed = spec.train.seed if config.seed is None else config.seed
    # --limit first, then the split: Keras' validation_split of the arrays given to fit
    arrays = data_module.load_arrays(spec.input, data_dir=config.data_dir, limit=config.limit,
                                     limit_test=config.limit_test, download=config.download,
                                     classes=num_classes(spec))
    if spec.train.validation_split is not None:
        arrays = data_module.hold_out(arrays, spec.train.validation_split)
    backend = get_backend(config.backend, device=config.device, threads=config.threads,
                          tf32=config.tf32, layout=config.layout)
    backend.seed(seed)
    batch_size = config.batch_size or spec.train.batch_size
    # a schedule counted in epochs needs this run's epoch length (--limit, --batch-size)
    model = backend.build(spec, data_module.num_batches(len(arrays.y_train), batch_size))
    start_weights = initial_weights(spec, seed)
    backend.set_weights(model, start_weights)
    return _Setup(spec, seed, config.epochs or spec.train.epochs, batch_size, arrays, backend,
                  model, compiled_model(backend, model, config.compile), start_weights)


def train_and_evaluate(spec_ref: str | Path | ModelSpec, config: TrainConfig,
                       out_dir: Path | None = None,
                       on_epoch: ProgressCallback | None = None,
                       checkpoint_dir: Path | None = None,
                       on_resume: Callable[[int], None] | None = None,
                       on_start: Callable[[dict[str, Any]], None] | None = None
                       ) -> TrainOutcome:
    """`train_model`, and its record written (metrics.json): `harness train`."""
    outcome = train_model(spec_ref, config, out_dir, on_epoch, checkpoint_dir, on_resume,
                          on_start)
    write_record(outcome)
    return outcome


def write_record(outcome: TrainOutcome) -> None:
    """The training record, metrics.json, into the run folder."""
    write_json_atomic(outcome.out_dir / METRICS_FILE, outcome.metrics)


def train_model(spec_ref: str | Path | ModelSpec, config: TrainConfig,
                out_dir: Path | None = None,
                on_epoch: ProgressCallback | None = None,
                checkpoint_dir: Path | None = None,
                on_resume: Callable[[int], None] | None = None,
                on_start: Callable[[dict[str, Any]], None] | None = None) -> TrainOutcome:
    """Build, train and test `spec` in `config.backend`; write the model's files, and return
    the record (`metrics`, not written: `write_record`) and the trained model. With
    `checkpoint_dir`, the training state is saved there after every epoch, a training cut short
    resumes from it (harness.training.checkpoint; `on_resume` is told how many epochs it
    restored), and it is removed once done. `on_start` is told the backend's environment once
    the model is built: the mode it really runs (compile_mode), as the record will say."""
    spec = as_spec(spec_ref)
    run = _set_up(spec, config)
    backend, model = run.backend, run.model
    if on_start is not None:
        on_start(backend.environment())
    checkpoint = (TrainingCheckpoint(checkpoint_dir, _training_identity(
        spec, config, run.seed, run.epochs, run.batch_size))
        if checkpoint_dir is not None else None)
    progress = (checkpoint and checkpoint.restore(backend, model)) or Progress(utc_now())
    history = [EpochRecord(**record) for record in progress.history]
    if history and on_resume is not None:
        on_resume(len(history))
    wall = time.perf_counter()

    def after_epoch() -> None:
        if checkpoint is not None:
            progress.history = [asdict(record) for record in history]
            checkpoint.save(backend, model, progress,
                            progress.wall_seconds + time.perf_counter() - wall)

    # validation and test: the last epoch's validation on the test set is the test pass
    test = TestPass(backend, run.arrays.x_test, run.arrays.y_test, run.batch_size)
    with track_memory() as memory:  # peak RSS while training (harness.measure.memory)
        _, validation = _run_epochs(backend, model, spec, run.arrays, test, run.epochs,
                                    run.seed, run.batch_size, on_epoch, history, after_epoch)
    # the test set validated the last epoch already; a validation split's is no test
    held_out = spec.train.validation_split is not None
    evaluation = validation if validation is not None and not held_out else test(model)
    wall = progress.wall_seconds + time.perf_counter() - wall

    trained = _trained(run, config, out_dir or default_out_dir(spec, config, run.seed),
                       evaluation)
    files = _save_model_files(run, trained)
    metrics = {
        **_metrics_head(run, config, history, evaluation, trained.probabilities),
        # all processes' wall time, from the first epoch's start to the test set's end
        "wall_seconds": wall,
        "memory": memory.result(),  # this process's: since the last resume
        "checkpoint": _checkpoint_record(checkpoint, progress),
        **files,
        "started_utc": progress.started_utc,
        "finished_utc": utc_now(),
        "environment": environment(backend.environment()),
    }
    if checkpoint is not None:
        checkpoint.clear()
    return TrainOutcome(metrics, trained.out_dir, trained, history)


def _trained(run: _Setup, config: TrainConfig, out_dir: Path,
             evaluation: Evaluation) -> TrainedModel:
    """The trained model, eager: a compiled training's weights copied into the model it was
    compiled from."""
    weights = run.backend.get_weights(run.model)
    if run.model is not run.eager:
        run.backend.set_weights(run.eager, weights)
    assert evaluation.probabilities is not None  # TestPass always gives them
    return TrainedModel(run.spec, config, run.seed, run.epochs, run.backend, run.eager,
                        weights, run.arrays, evaluation.probabilities, Path(out_dir))


def _save_model_files(run: _Setup, trained: TrainedModel) -> dict[str, str]:
    """Write the trained model, its initial and final weights, test outputs and spec; their
    file names, as the record lists them."""
    out_dir = trained.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    model_file = run.backend.save(run.model, out_dir)
    save_weights(run.start_weights, str(out_dir / "initial_weights.npz"))
    save_weights(trained.weights, str(out_dir / FINAL_WEIGHTS_FILE))
    save_test_outputs(out_dir / TEST_OUTPUTS_FILE, trained.probabilities, run.arrays.y_test)
    (out_dir / SPEC_FILE).write_text(dump_spec(run.spec), encoding="utf-8")
    return {"model_file": model_file.name, "initial_weights_file": "initial_weights.npz",
            "final_weights_file": FINAL_WEIGHTS_FILE, "test_outputs_file": TEST_OUTPUTS_FILE,
            "spec_file": SPEC_FILE}


def _checkpoint_record(checkpoint: TrainingCheckpoint | None,
                       progress: Progress) -> dict[str, Any] | None:
    """None without checkpoints; else the resumes (after which epoch, when, where), the wall
    seconds of the processes before this one, and the seconds this process spent writing
    checkpoints (outside the epochs' time)."""
    if checkpoint is None:
        return None
    return {"resumes": progress.resumes, "wall_seconds_before": progress.wall_seconds,
            "save_seconds": checkpoint.save_seconds}


def _metrics_head(run: _Setup, config: TrainConfig, history: list[EpochRecord],
                  evaluation: Evaluation, probabilities: np.ndarray) -> dict[str, Any]:
    """What was trained, how, and how well: the record's first fields."""
    spec, arrays = run.spec, run.arrays
    trainable, non_trainable = run.backend.count_params(run.model)
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "kind": "train",
        "status": "ok",
        "spec": {"name": spec.name, "hash": spec_hash(spec), "dataset": spec.input.dataset_name,
                 # {file name: sha256} of the data: the four IDX files, or the .npz
                 "data_sha256": data_module.data_files(spec.input)},
        "backend": config.backend,
        "device": config.device,
        "seed": run.seed,
        "epochs": run.epochs,
        "batch_size": run.batch_size,
        "optimizer": spec.train.optimizer.model_dump(),
        # the learning-rate schedule (None: the optimizer's learning_rate throughout)
        "schedule": (spec.train.schedule.model_dump() if spec.train.schedule is not None
                     else None),
        "limit": config.limit,
        "limit_test": config.limit_test,
        "n_train": int(len(arrays.y_train)),
        "n_test": int(len(arrays.y_test)),
        "n_validation": int(len(arrays.y_val)) if arrays.y_val is not None else None,
        "params": _params(spec, trainable, non_trainable),
        "history": [asdict(record) for record in history],
        "test_loss": evaluation.loss,
        "test_accuracy": evaluation.accuracy,
        # rows: true class, columns: predicted class (test set)
        "confusion_matrix": confusion_matrix(arrays.y_test, probabilities.argmax(axis=1),
                                             probabilities.shape[1]).tolist(),
        "timing": epoch_timing(history, len(arrays.y_train)),
        # what was asked for; what the frameworks ran with is read back into
        # environment.backend (threads, compile_mode, tf32, layout, data_device)
        "requested": {"threads": config.threads, "tf32": config.tf32, "layout": config.layout,
                      "compile": config.compile},
    }


def _params(spec: ModelSpec, trainable: int, non_trainable: int) -> dict[str, int]:
    """The spec's parameter counts and the framework's own (BN statistics non-trainable)."""
    summary = infer(spec)
    return {"total": summary.total_params, "trainable": summary.trainable_params,
            "non_trainable": summary.non_trainable_params,
            "backend_trainable": trainable, "backend_non_trainable": non_trainable}


def save_test_outputs(path: Path, probabilities: np.ndarray, labels: np.ndarray) -> None:
    np.savez_compressed(path, probabilities=probabilities.astype(np.float32, copy=False),
                        labels=labels)


def load_test_outputs(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(probabilities, labels) a run recorded; None where the file is missing or unreadable
    (a run written before the harness kept them, a damaged file)."""
    try:
        with np.load(path) as outputs:
            return outputs["probabilities"], outputs["labels"]
    except (OSError, KeyError, ValueError):
        return None


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def steady_epoch_seconds(seconds: Sequence[float]) -> float | None:
    """The steady epoch time, the one definition everywhere (records, report, benchmarks): the
    median of the epochs after the first. None with fewer than two epochs: the first epoch
    holds tracing, compilation and warm-up and is no steady figure."""
    return statistics.median(seconds[1:]) if len(seconds) >= 2 else None


def epoch_timing(history: list[EpochRecord], n_train: int) -> dict[str, float | int | None]:
    """First epoch (tracing, compilation, warm-up) kept apart from the steady epochs."""
    seconds = [record.seconds for record in history]
    steady = steady_epoch_seconds(seconds)
    return {
        "first_epoch_seconds": seconds[0] if seconds else None,
        "mean_epoch_seconds": sum(seconds) / len(seconds) if seconds else None,
        "steady_epoch_seconds": steady,
        "steady_epochs": max(len(seconds) - 1, 0),  # epochs behind the median; 0: no figure
        "definition": EPOCH_TIMING,
        "samples_per_second": n_train / steady if steady else None,
    }
