"""The job as one typed object, stored as the JSON records have always held: run folders
written before it (jobs as dicts, fields missing that later options added) still resume and
report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pydantic
import pytest

from harness.records import folders
from harness.records.io import RESULT_SCHEMA_VERSION, read_json, write_json_atomic
from harness.run.executors.local import LocalExecutor
from harness.run.job import NOT_IN_RESUME_KEY, Job, new_job
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig, plan_jobs
from harness.spec import load_spec, spec_hash
from harness.training import EPOCH_TIMING

from .stand_in import StandIn, write_finished_records

CONFIG = RunConfig(specs=["mlp2"], backends=["torch"], batch_sizes=[1])


def _record_from_before() -> dict:
    """job.json's `config` as a harness without strict_providers, ORT variants, compile modes
    and the accuracy gate wrote it: a dict, and a resume key over its own fields."""
    config = {
        "job_id": "mlp2--torch--seed0", "spec": "mlp2", "base_spec": "mlp2",
        "spec_hash": spec_hash(load_spec("mlp2")), "overrides": {},
        "study": "mlp_depth_bn_dropout", "backend": "torch", "seed": 0, "epochs": None,
        "limit": None, "limit_test": None, "providers": ["cpu"], "batch_sizes": [1],
        "device": "cpu", "threads": None, "data_dir": "/data/of/that/machine", "opset": 18,
        "latency_warmup": 5, "latency_min_runs": 20, "latency_min_seconds": 0.5,
        "tf32": False, "layout": "channels_last", "epoch_timing": EPOCH_TIMING}
    config["config_hash"] = _old_resume_key(config)
    return {"schema_version": RESULT_SCHEMA_VERSION, "kind": "job",
            "job_id": config["job_id"], "status": "ok", "error": None, "failed_step": None,
            "started_utc": "2025-01-01T00:00:00Z", "config": config,
            "finished_utc": "2025-01-01T00:01:00Z", "seconds": 60.0}


def _old_resume_key(config: dict) -> str:
    """The resume key as records have always computed it."""
    fields = {k: v for k, v in config.items() if k not in NOT_IN_RESUME_KEY}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()
                          ).hexdigest()[:16]


def test_a_run_folder_from_before_resumes_and_reports(tmp_path: Path) -> None:
    out, stand_in, lines = tmp_path / "run", StandIn(tmp_path), []
    old = _record_from_before()
    write_json_atomic(folders.job_dir(out, old["job_id"]) / folders.JOB_FILE, old)
    write_finished_records(folders.job_dir(out, old["job_id"]))  # its other records, whole
    run_matrix(CONFIG, out, show=lines.append, executor=LocalExecutor(command=stand_in.command))
    assert "1 jobs: 1 already finished, 0 to run" in lines and stand_in.calls() == []
    assert read_json(folders.job_dir(out, old["job_id"]) / folders.JOB_FILE) == old  # untouched

    from harness.report.load import load_run

    row = load_run(out).jobs.iloc[0]
    assert (row["job_id"], row["backend"], row["seed"]) == (old["job_id"], "torch", 0)

    lines.clear()  # a dimension the old record lacks: it ran eager, a compiled job is new
    run_matrix(RunConfig(specs=["mlp2"], backends=["torch"], batch_sizes=[1],
                         compile_modes=["eager", "compiled"]), out, show=lines.append,
               executor=LocalExecutor(command=stand_in.command))
    assert "2 jobs: 1 already finished, 1 to run" in lines
    assert stand_in.calls() == [f"{old['job_id']}--compiled"]

    lines.clear()  # an option the old record lacks, now set otherwise: the job runs again
    run_matrix(RunConfig(specs=["mlp2"], backends=["torch"], batch_sizes=[1],
                         accuracy_gate=0.5), out, show=lines.append,
               executor=LocalExecutor(command=stand_in.command))
    assert "1 finished job re-run: accuracy_gate changed 0.99 -> 0.5" in lines
    assert stand_in.calls()[-1] == old["job_id"]


def test_the_job_is_stored_with_the_keys_and_resume_key_records_have_always_had() -> None:
    job = plan_jobs(CONFIG).jobs[0]
    record = job.record()
    assert list(record)[:8] == ["job_id", "spec", "base_spec", "spec_hash", "overrides",
                                "study", "backend", "seed"]
    assert record["providers"] == ["cpu"] and record["batch_sizes"] == [1]  # JSON lists
    assert job.config_hash == _old_resume_key(record)  # finished runs keep counting
    assert Job.model_validate(json.loads(json.dumps(record))) == job


def test_a_job_is_checked_when_made_and_when_read() -> None:
    record = plan_jobs(CONFIG).jobs[0].record()
    with pytest.raises(pydantic.ValidationError, match="seed"):
        Job.model_validate({**record, "seed": "zero"})
    with pytest.raises(TypeError, match="not Job fields: \\['workers'\\]"):
        new_job(**{k: v for k, v in record.items() if k != "config_hash"}, workers=2)
    job = Job.model_validate(record)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        job.seed = 1  # type: ignore[misc]
    assert not job.needs_gpu and job.model_copy(update={"device": "cuda"}).needs_gpu
