"""The job: one spec (x sweep point) x backend x seed with every setting that decides its result
and its timings. One typed object flows from the plan (harness.run.plan) through an executor
into the job's own process (harness.run.job_process) and its records: run.json's `jobs` and
job.json's `config` store it as JSON, with the keys records have always had.

Where and how a job ran (its executor, host, cores, GPU) is its Placement, recorded beside the
job in job.json; it is no part of the job and of its resume key.
"""

from __future__ import annotations

import errno
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

# Job fields that cannot change a job's result or its timings. Every other field is in the
# resume key, so a field added to the job later is covered without anyone remembering to.
NOT_IN_RESUME_KEY = frozenset({
    "job_id",       # the name the key is looked up under
    "study",        # a label from the spec's `reference`, which spec_hash leaves out too
    "data_dir",     # where the data lies: every file is checked against its SHA-256 on load
    "config_hash",  # the key itself
})


# A write that failed for want of space (a full disk, a quota): neither the job nor the command
# is at fault, and every write after it would fail too (harness.run.matrix.stop_when_full,
# harness.cli, harness.commands.args).
FULL_DISK = frozenset({errno.ENOSPC, errno.EDQUOT})


class Job(BaseModel):
    """What a job is. The fields after `compile` are `harness run` options (RunConfig)."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # ignore: records of other versions

    # <spec>--<backend>--seed<seed>[--<compile>]: the job's folder under RUN_DIR/jobs
    job_id: str
    spec: str  # the spec's name: RUN_DIR/specs/<spec>.yaml, sweep overrides applied
    base_spec: str  # the spec the sweep point was applied to
    spec_hash: str
    overrides: dict[str, Any]  # the sweep point: {field path: value}
    study: str | None
    backend: str
    seed: int
    # how the framework trains and infers (harness.training.COMPILE_MODES): one of the run's
    # --compile modes; its native latency is timed in it, beside the eager reference
    compile: str  # `harness run --compile`, as TrainConfig.compile
    epochs: int | None
    limit: int | None
    limit_test: int | None
    providers: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    device: str
    threads: int | None
    data_dir: str | None
    opset: int
    latency_warmup: int
    latency_min_runs: int
    latency_min_seconds: float
    strict_providers: bool
    tf32: bool
    layout: str
    ort_variants: tuple[str, ...]
    accuracy_gate: float
    epoch_timing: str  # not an option: what an epoch's time means; jobs timed otherwise re-run
    config_hash: str  # the resume key: a digest of resume_fields

    def record(self) -> dict[str, Any]:
        """The job as JSON stores it (run.json, job.json's `config`)."""
        return self.model_dump(mode="json")

    @property
    def needs_gpu(self) -> bool:
        return self.device == "cuda" or "cuda" in self.providers


STEP_PREFIX = "step "  # a job's `step train`, `step export`, ... lines (harness.run.job_process)


def step_started(line: str) -> str | None:
    """The step a job's `step <name>` line says it starts, else None."""
    if not line.startswith(STEP_PREFIX):
        return None
    return line.removeprefix(STEP_PREFIX).strip() or None


def last_step(log_text: str) -> str | None:
    """The last step a job's output (its job.log) started: where a job that died without a
    record was."""
    steps = [step for step in map(step_started, log_text.splitlines()) if step]
    return steps[-1] if steps else None


def at_step(step: object) -> str:
    """` at <step>` for a failed job's recorded step (job.json's `failed_step`); nothing where
    it names none (None, or NaN in a report's table), never "at None"."""
    return f" at {step}" if isinstance(step, str) and step else ""


def resume_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of a job record that its result and timings depend on."""
    return {key: value for key, value in record.items() if key not in NOT_IN_RESUME_KEY}


def config_hash(record: dict[str, Any]) -> str:
    """The resume key of a job record (with or without its `config_hash`)."""
    canonical = json.dumps(resume_fields(record), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def new_job(**fields: Any) -> Job:
    """A job with its resume key computed from its fields (every one a Job field: a run option
    the job does not carry would be lost)."""
    unknown = set(fields) - set(Job.model_fields)
    if unknown:
        raise TypeError(f"not Job fields: {sorted(unknown)}")
    record = Job.model_validate({**fields, "config_hash": ""}).record()
    return Job.model_validate({**record, "config_hash": config_hash(record)})


class Placement(BaseModel):
    """Where and how a job ran, as its executor chose and its process saw it."""

    model_config = ConfigDict(frozen=True)

    executor: str  # local | ray
    slot: int | None = None  # the local worker (0..N-1); None: one job at a time, or Ray
    cpus: tuple[int, ...] | None = None  # the cores it was pinned to; None: not pinned
    gpu: str | None = None  # CUDA_VISIBLE_DEVICES it was given; None: left as it was
    warm: bool = False  # forked from a warm job server (harness.run.job_server)
    host: str | None = None  # filled in by the job's process, with what it saw:
    affinity: tuple[int, ...] | None = None  # the cores it could run on
    threads: int | None = None  # the compute threads each runtime got (harness.measure.environment)

    def record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
