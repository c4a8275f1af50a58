"""One job of a matrix run, in its own process: train -> evaluate -> export -> parity -> latency.

    python -m harness.run.job_process WORK_DIR  < job_input(job, spec_text, placement, checkpoint)

The job (harness.run.job.Job), its spec's YAML text and its placement come on stdin, so the
process needs no run folder: it writes its records into WORK_DIR (a run's partial folder, or a
Ray worker's temporary folder) and ends with job.json saying ok or failed, how long each part
took (`phases`, PHASES) and where it ran (`placement`). The steps hand each other the trained
model in memory (harness.training.TrainedModel: spec, backend, model, weights, data, test-set
probabilities), so each expensive thing happens once per job; the training record is written
once, after the export. Given a checkpoint folder, its training saves its state there after
each epoch and resumes from it (harness.training.checkpoint). Its output is the job log; lines
that start with `step `, `epoch ` or `progress ` tell the driver how far it is.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.preload import import_frameworks
from harness.measure.environment import thread_budget, utc_now
from harness.measure.memory import peak_of, track_memory
from harness.records import folders
from harness.records.io import write_json_atomic
from harness.records.models import JobRecord, job_record
from harness.run.job import Job, Placement
from harness.spec import ModelSpec
from harness.spec.loader import parse_spec

if TYPE_CHECKING:  # the frameworks load in the steps (harness.backends.preload times them)
    from harness.training import TrainOutcome

STEPS = ("train", "export", "latency")
PHASES = folders.JOB_PHASES
PROGRESS_EVERY_S = 10.0  # a progress line within a long epoch (outside every timed region)


def _data_dir(job: Job) -> Path | None:
    return Path(job.data_dir) if job.data_dir else None


class EpochProgress:
    """`progress epoch E/N ...` lines every PROGRESS_EVERY_S from a thread that sleeps between
    them, so the epochs' own timed loops carry nothing. Within the first epoch only the time so
    far is known; later ones are measured against the epoch before."""

    def __init__(self, epochs: int, every_s: float = PROGRESS_EVERY_S) -> None:
        self.epochs, self._every = epochs, every_s
        self._done, self._last_epoch_s = 0, None
        self._epoch_start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harness-progress", daemon=True)

    def epoch_finished(self, record: Any, epochs: int) -> None:
        now = time.perf_counter()
        self._done, self._last_epoch_s = record.epoch, now - self._epoch_start
        self._epoch_start = now
        print(f"epoch {record.epoch}/{epochs} loss {record.train_loss:.4f} "
              f"acc {record.train_accuracy:.4f} {record.seconds:.2f}s", flush=True)

    def resumed(self, epochs_done: int) -> None:
        """The training continues from a checkpoint after `epochs_done` epochs."""
        self._done = epochs_done
        print(f"progress resumed from its checkpoint after epoch {epochs_done}/{self.epochs}",
              flush=True)

    def line(self) -> str:
        elapsed = time.perf_counter() - self._epoch_start
        text = f"progress epoch {min(self._done + 1, self.epochs)}/{self.epochs} {elapsed:.0f}s"
        if self._last_epoch_s:
            text += f" ~{min(elapsed / self._last_epoch_s, 0.99):.0%}"
        return text

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            print(self.line(), flush=True)

    def __enter__(self) -> EpochProgress:
        self._epoch_start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class _Pass:
    """What a job's steps hand each other in memory: the training's outcome (its record, not
    yet written, and the trained model) and the export's record."""

    training: TrainOutcome | None = None
    export: dict[str, Any] | None = None


def _train(job: Job, spec: ModelSpec, work: Path, done: _Pass,
           checkpoint: Path | None = None) -> None:
    from harness.training import TrainConfig, train_model

    with EpochProgress(job.epochs or spec.train.epochs) as progress:
        done.training = train_model(spec, TrainConfig(
            backend=job.backend, device=job.device, epochs=job.epochs, seed=job.seed,
            limit=job.limit, limit_test=job.limit_test, threads=job.threads,
            data_dir=_data_dir(job), tf32=job.tf32, layout=job.layout,
            compile=job.compile),
            out_dir=work, on_epoch=progress.epoch_finished, checkpoint_dir=checkpoint,
            on_resume=progress.resumed)


def _export(job: Job, spec: ModelSpec, work: Path, done: _Pass) -> None:
    """Export the trained model and check it; then the training record is written, once,
    with the export's summary (as `harness export --from` adds it), or without where the
    export failed."""
    from harness.export.driver import ExportError, export_summary, export_trained
    from harness.training import write_record

    assert done.training is not None  # the train step ran
    out = work / folders.ONNX_FILE
    try:
        done.export = export_trained(done.training.trained, out, opset=job.opset,
                                     threads=job.threads)
        done.training.metrics["exports"] = [export_summary(done.export, out, work)]
    finally:
        write_record(done.training)
    parity = done.export["parity"]
    if not done.export["passed"]:
        raise ExportError(f"ONNX parity failed: max |diff| {parity['max_abs_diff']:.2e}")


def _latency(job: Job, spec: ModelSpec, work: Path, done: _Pass) -> None:
    """ONNX Runtime (the export above) and native latency per provider x batch size; the
    native predictor in the job's compile mode, and eager: the reference of every speed-up.
    The trained model is timed on its own device, and its test set scores the variants."""
    from harness.export.driver import recorded_source, trained_source
    from harness.latency.bench import bench_trained, latency_result
    from harness.latency.variants import VariantBench, VariantSettings
    from harness.training import EAGER

    assert done.training is not None and done.export is not None  # train and export ran
    trained = done.training.trained
    variants = VariantBench(VariantSettings(
        ort_variants=job.ort_variants, compile_modes=(EAGER, job.compile),
        accuracy_gate=job.accuracy_gate, data_dir=_data_dir(job), limit_test=job.limit_test),
        test=trained.arrays)
    settings = {"providers": list(job.providers), "batch_sizes": list(job.batch_sizes),
                "threads": job.threads, "warmup": job.latency_warmup,
                "min_runs": job.latency_min_runs, "min_seconds": job.latency_min_seconds,
                "strict_providers": job.strict_providers}
    environments: dict[str, Any] = {}
    records = bench_trained(trained, done.export, work / folders.ONNX_FILE,
                            environments=environments, variants=variants, **settings)
    source = trained_source(trained)
    result = latency_result(spec, {job.backend: recorded_source(source.description, work)},
                            {**settings, "tf32": job.tf32, "layout": job.layout,
                             **variants.settings.as_dict()}, records, environments)
    write_json_atomic(work / folders.LATENCY_FILE, {**result, **variants.result()})


def _job_relative(message: str, work: Path) -> str:
    """Messages name files in the work folder, which is renamed when the job ends: name them as
    the job folder sees them (`model.onnx.log`, not `jobs/.<job>.partial/...`)."""
    for folder in dict.fromkeys((str(work), str(work.resolve()))):
        message = message.replace(folder + os.sep, "")
    return message


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - start


def _affinity() -> tuple[int, ...] | None:
    """The cores this process may run on (None where the OS does not say)."""
    return tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else None


def _split_phases(steps: dict[str, float], metrics: dict[str, Any] | None,
                  export: dict[str, Any] | None) -> dict[str, float]:
    """Each step's seconds split by what its records time: the epochs and evaluation inside
    the train step (`metrics`, the training record), the parity check inside the export
    (`export`, model.onnx.json's record). A training resumed from a checkpoint counts this
    process's epochs and seconds only."""
    phases = {"train_setup": steps.get("train"), "export": steps.get("export"),
              "latency": steps.get("latency")}
    if "train" in steps and metrics is not None:
        checkpoint = metrics.get("checkpoint") or {}
        resumes = checkpoint.get("resumes") or [{"after_epoch": 0}]
        epochs = sum(epoch["seconds"] for epoch in metrics["history"][resumes[-1]["after_epoch"]:])
        wall = metrics["wall_seconds"] - checkpoint.get("wall_seconds_before", 0.0)
        phases.update(train_setup=steps["train"] - wall, epochs=epochs, evaluation=wall - epochs)
    if "export" in steps and export is not None:
        parity = (export.get("seconds") or {}).get("parity")
        if parity is not None:
            phases.update(export=steps["export"] - parity, parity=parity)
    return {name: phases[name] for name in PHASES if phases.get(name) is not None}


def _resumed(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """Where the job's training (its record `metrics`) resumed from a checkpoint: after which
    epoch, how many times, and the training seconds of the processes before (not in this
    record's `seconds`)."""
    checkpoint = (metrics or {}).get("checkpoint") or {}
    resumes = checkpoint.get("resumes")
    if not resumes:
        return None
    return {"after_epoch": resumes[-1]["after_epoch"], "times": len(resumes),
            "earlier_seconds": checkpoint["wall_seconds_before"]}


Step = Callable[[Job, ModelSpec, Path, _Pass], None]


def _failure(exc: Exception, step: str, work: Path) -> dict[str, Any]:
    """The record's status, step and error: `unavailable` and the reason for a compile mode
    this platform cannot run (not a failure: the run's summary lists it apart), else `failed`
    with the exception (its traceback goes to the job log)."""
    from harness.training import CompileUnavailable

    if isinstance(exc, CompileUnavailable):
        print(f"unavailable: {exc}", flush=True)
        return {"status": folders.UNAVAILABLE, "failed_step": step, "error": str(exc)[:2000]}
    traceback.print_exc()
    error = _job_relative(f"{type(exc).__name__}: {str(exc).strip()}", work)
    return {"status": "failed", "failed_step": step, "error": error[:2000]}


def _run_steps(job: Job, spec: ModelSpec, work: Path, outcome: dict[str, Any],
               checkpoint: Path | None, done: _Pass) -> dict[str, float]:
    """Run every step, handing each the one before's results (`done`), recording the first
    failure and each step's memory in `outcome` (job.json's fields); return each step's
    seconds."""
    seconds: dict[str, float] = {}
    memory: dict[str, Any] = {}  # per step: peak RSS of the job's process (harness.measure.memory)
    actions: tuple[Step, ...] = (partial(_train, checkpoint=checkpoint), _export, _latency)
    for step, action in zip(STEPS, actions, strict=True):
        print(f"step {step}", flush=True)
        try:
            with _timed(seconds, step), track_memory() as tracker:
                action(job, spec, work, done)
        except Exception as exc:  # noqa: BLE001 - a failed job is recorded; the run goes on
            outcome.update(_failure(exc, step, work))
            break
        finally:
            memory[step] = tracker.result()
    outcome["memory"] = {"steps": memory, "peak": peak_of(list(memory.values()))}
    return seconds


def run_job(job: Job, spec: ModelSpec, work: Path, placement: Placement, spawned: float,
            entered: float, checkpoint: Path | None = None) -> JobRecord:
    """Run the job into `work`; return its record (also written as job.json). `spawned`: the
    wall-clock time its process was asked for (by an executor on this host); `entered`: when
    the process reached its main function; `checkpoint`: its training's checkpoint folder."""
    work.mkdir(parents=True, exist_ok=True)
    started_utc = utc_now()
    outcome: dict[str, Any] = {}
    phases = {"start": max(entered - spawned, 0.0)}
    start = time.perf_counter()
    with _timed(phases, "imports"):
        import_frameworks(job.backend)
    done = _Pass()
    steps = _run_steps(job, spec, work, outcome, checkpoint, done)
    metrics = done.training.metrics if done.training is not None else None
    phases.update(_split_phases(steps, metrics, done.export))
    record = job_record(
        job.job_id, job.record(), placement.model_copy(update={
            "host": socket.gethostname(), "affinity": _affinity(),
            "threads": thread_budget(job.threads)}).record(),
        started_utc=started_utc, **outcome, finished_utc=utc_now(),
        seconds=time.perf_counter() - start, phases={**phases, "total": time.time() - spawned},
        resumed=_resumed(metrics))
    write_json_atomic(work / folders.JOB_FILE, record.record())
    return record


def run_given(given: dict[str, Any], work: Path, entered: float) -> int:
    """Run the job an executor gave (job_input); the process's exit status."""
    job = Job.model_validate(given["job"])
    spec = parse_spec(given["spec"], source=folders.spec_file(Path("RUN_DIR"), job.spec))
    checkpoint = given.get("checkpoint")
    record = run_job(job, spec, work, Placement.model_validate(given["placement"]),
                     given["spawned"], entered, Path(checkpoint) if checkpoint else None)
    return 0 if record.status == "ok" else 1


def job_input(job: Job, spec_text: str, placement: Placement,
              checkpoint: Path | None = None) -> dict[str, Any]:
    """What a job process is given: the job, its spec's YAML, where it runs, its training
    checkpoint folder (None: none), and when it was asked for (its `start` phase's start)."""
    return {"job": job.record(), "spec": spec_text, "placement": placement.record(),
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "spawned": time.time()}


def main(argv: list[str] | None = None) -> int:
    entered = time.time()
    work = Path((argv or sys.argv[1:])[0])
    return run_given(json.load(sys.stdin), work, entered)


if __name__ == "__main__":
    sys.exit(main())
