"""A run folder you can trust: one writer at a time, exact resume, unique job ids.

Jobs here are a stand-in script (it records ok with the job's config), so the tests exercise
`harness run`'s own machinery - lock, plan, resume, partial folders - in seconds, not training.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from run.stand_in import FINISHED_RECORDS

from harness.cli import main
from harness.errors import UsageError
from harness.records import folders
from harness.records.io import read_json, write_json_atomic
from harness.run.executors.child import JOB_MODULE
from harness.run.folder import run_folder_lock
from harness.run.job import NOT_IN_RESUME_KEY, Job, resume_fields
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig, plan_jobs

FAKE_JOB = FINISHED_RECORDS + '''\
"""Stands in for `python -m harness.run.job_process WORK_DIR`: records ok with the job."""
import json, os, sys, time
from pathlib import Path
from harness.measure.environment import utc_now
from harness.records.io import RESULT_SCHEMA_VERSION, write_json_atomic
from harness.records import folders
from harness.run.job import Job

work, given = Path(sys.argv[1]), json.load(sys.stdin)
job = Job.model_validate(given["job"])
with open(os.environ["FAKE_JOB_CALLS"], "a", encoding="utf-8") as calls:
    calls.write(job.job_id + "\\n")
gate, deadline = os.environ.get("FAKE_JOB_GATE"), time.monotonic() + 60
while gate and not os.path.exists(gate) and time.monotonic() < deadline:
    time.sleep(0.02)  # held in flight until the test opens the gate
print("step train", flush=True)
write_finished_records(work)
write_json_atomic(work / folders.JOB_FILE, {
    "schema_version": RESULT_SCHEMA_VERSION, "kind": "job", "job_id": job.job_id,
    "status": "ok", "error": None, "failed_step": None, "started_utc": utc_now(),
    "config": job.record(), "placement": {**given["placement"],
                                          "affinity": sorted(os.sched_getaffinity(0))},
    "finished_utc": utc_now(), "seconds": 0.0})
'''

# `harness run` in a process of its own whose jobs are the stand-in script.
FAKE_RUN = '''\
import subprocess, sys
real_popen = subprocess.Popen
def fake_job(command, **options):  # command: [python, -m, harness.run.job_process, WORK_DIR]
    return real_popen([sys.executable, sys.argv[1], *command[3:]], **options)
subprocess.Popen = fake_job
from harness.cli import main
sys.exit(main(sys.argv[2:]))
'''

SPECS = ["mlp2", "mlp3"]


@pytest.fixture
def fake_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Jobs of run_matrix in this process run the stand-in; returns the job ids run so far."""
    script = tmp_path / "fake_job.py"
    script.write_text(FAKE_JOB)
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_JOB_CALLS", str(calls))
    real_popen = subprocess.Popen

    def popen(command: list[str], **options: object) -> subprocess.Popen:
        if command[1:3] == ["-m", JOB_MODULE]:
            command = [sys.executable, str(script), *command[3:]]
        return real_popen(command, **options)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return lambda: calls.read_text().split() if calls.is_file() else []


def _config(**changes: object) -> RunConfig:
    return dataclasses.replace(RunConfig(specs=SPECS, backends=["torch"], batch_sizes=[1]),
                               **changes)


def _records(out: Path) -> dict[str, dict]:
    return {p.name: read_json(p / folders.JOB_FILE) for p in folders.finished_job_dirs(out)}


def test_a_second_run_on_a_held_folder_is_refused_and_the_first_finishes(tmp_path: Path) -> None:
    fake_job, fake_run = tmp_path / "fake_job.py", tmp_path / "fake_run.py"
    fake_job.write_text(FAKE_JOB)
    fake_run.write_text(FAKE_RUN)
    out, calls, gate = tmp_path / "run", tmp_path / "calls.txt", tmp_path / "gate"
    env = {**os.environ, "FAKE_JOB_CALLS": str(calls), "FAKE_JOB_GATE": str(gate)}
    command = [sys.executable, str(fake_run), str(fake_job), "run", "--specs", ",".join(SPECS),
               "--backends", "keras,torch", "--batch-sizes", "1", "--fresh-processes",
               "--out", str(out)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not list((out / folders.JOBS_DIR).glob(".*.partial")):  # a job in flight
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        plan_before = (out / folders.RUN_FILE).read_bytes()
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        gate.touch()
        first_out, first_err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert second.returncode == 2, second.stdout + second.stderr
    message = " ".join(second.stderr.split())  # rich wraps long lines of piped output
    assert message.count("error:") == 1 and "in use by another `harness run`" in message
    assert f"pid {first.pid} on host {socket.gethostname()} since 20" in message
    assert "Traceback" not in second.stderr and second.stdout == ""
    assert (out / folders.RUN_FILE).read_bytes() == plan_before  # the refused run wrote nothing

    assert first.returncode == 0, first_out + first_err
    jobs = [f"{spec}--{backend}--seed0" for spec in SPECS for backend in ("keras", "torch")]
    assert sorted(calls.read_text().split()) == sorted(jobs)  # every job exactly once
    assert sorted(p.name for p in (out / folders.JOBS_DIR).iterdir()) == sorted(jobs)
    assert read_json(out / folders.SUMMARY_FILE)["ok"] == 4

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr  # the lock went with the first run
    assert "4 already finished, 0 to run" in again.stdout

    from harness.report.load import load_run

    run = load_run(out)  # the lock file is no job and does not upset the report
    assert sorted(run.jobs["job_id"]) == sorted(jobs)
    assert not [note for note in run.notes if folders.LOCK_FILE in note]


def test_held_folder_is_refused_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    with run_folder_lock(out):
        holder = json.loads((out / folders.LOCK_FILE).read_text())
        code = main(["run", "--specs", "mlp2", "--backends", "torch", "--out", str(out)])
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert code == 2
    assert f"pid {os.getpid()} on host" in " ".join(capsys.readouterr().err.split())
    assert sorted(p.name for p in out.iterdir()) == [folders.LOCK_FILE]


HOLD = '''\
import sys, time
from pathlib import Path
from harness.run.folder import run_folder_lock
with run_folder_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
'''


def test_killed_holder_frees_the_folder_and_stale_partials_go_only_under_the_lock(
        tmp_path: Path, fake_jobs: Callable[[], list[str]]) -> None:
    out = tmp_path / "run"
    stale = out / folders.JOBS_DIR / ".mlp2--torch--seed0.partial"
    stale.mkdir(parents=True)
    # another command's job cut short on the same folder: its training resumes from it later
    checkpoint = folders.checkpoint_dir(out, "cnn7_k7--keras--seed0")
    checkpoint.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match=f"pid {holder.pid} on host"):
            run_matrix(_config(), out, show=lambda line: None)
        assert stale.is_dir()  # the holder's job in flight is left alone
    finally:
        holder.send_signal(signal.SIGKILL)  # as by the OOM killer: no cleanup runs
        holder.wait()
    summary = run_matrix(_config(), out, show=lambda line: None)
    assert summary["ok"] == 2 and sorted(fake_jobs()) == sorted(_records(out))
    assert list((out / folders.JOBS_DIR).glob(".*")) == [checkpoint]


def test_changed_threads_reruns_the_jobs_and_says_so(
        tmp_path: Path, fake_jobs: Callable[[], list[str]]) -> None:
    out, lines = tmp_path / "run", []
    run_matrix(_config(threads=1), out, show=lines.append)
    assert "2 jobs: 0 already finished, 2 to run" in lines
    lines.clear()
    run_matrix(_config(threads=2), out, show=lines.append)
    assert "2 jobs: 0 already finished, 2 to run" in lines
    assert "2 finished jobs re-run: threads changed 1 -> 2" in lines
    assert len(fake_jobs()) == 4
    assert {record["config"]["threads"] for record in _records(out).values()} == {2}
    lines.clear()
    run_matrix(_config(threads=2, latency_min_runs=3), out, show=lines.append)
    assert "2 finished jobs re-run: latency_min_runs changed 20 -> 3" in lines


def test_a_moved_data_dir_does_not_rerun(tmp_path: Path,
                                        fake_jobs: Callable[[], list[str]]) -> None:
    out, lines = tmp_path / "run", []
    run_matrix(_config(data_dir="/data/a"), out, show=lines.append)
    run_matrix(_config(data_dir="/data/b"), out, show=lines.append)
    assert "2 jobs: 2 already finished, 0 to run" in lines and len(fake_jobs()) == 2
    assert not [line for line in lines if "re-run" in line]


# One changed value per RunConfig field that reaches a job; a new field must be added here.
CHANGED = {"providers": ["cpu", "cuda"], "batch_sizes": [1, 2], "epochs": 2, "limit": 300,
           "limit_test": 100, "threads": 3, "device": "cuda", "opset": 17, "latency_warmup": 1,
           "latency_min_runs": 3, "latency_min_seconds": 0.1, "strict_providers": True,
           "tf32": True, "layout": "nchw", "ort_variants": ["int8-dynamic"],
           "accuracy_gate": 0.5}
# which jobs exist: the job ids
NAMES_JOBS = {"specs", "backends", "seeds", "sets", "groups", "compile_modes"}
# run-wide only: whether the up-front data check may download (no job reads it)
RUN_WIDE = {"download"}


def test_every_setting_but_data_dir_is_in_the_resume_key() -> None:
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert fields == set(CHANGED) | NAMES_JOBS | RUN_WIDE | {"data_dir"}
    assert fields - NAMES_JOBS - RUN_WIDE <= set(Job.model_fields)  # every option reaches the job
    base = plan_jobs(_config()).jobs[0]
    for name, value in CHANGED.items():
        changed = plan_jobs(_config(**{name: value})).jobs[0]
        expected = tuple(value) if isinstance(value, list) else value
        assert getattr(changed, name) == expected, name
        assert changed.config_hash != base.config_hash, name
    moved = plan_jobs(_config(data_dir="/elsewhere")).jobs[0]
    assert moved.config_hash == base.config_hash
    assert set(base.record()) - set(resume_fields(base.record())) == NOT_IN_RESUME_KEY


def test_duplicate_job_ids_are_refused_naming_both_sources(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.spec import load_spec
    from harness.spec.loader import dump_spec

    zoo_text = dump_spec(load_spec("mlp2"))
    same, other = tmp_path / "same" / "mlp2.yaml", tmp_path / "other" / "mlp2.yaml"
    for path, text in ((same, zoo_text), (other, zoo_text.replace("units: 64", "units: 32"))):
        path.parent.mkdir()
        path.write_text(text)
    assert zoo_text != other.read_text()
    with pytest.raises(UsageError, match=f"'mlp2' and '{other}' with different contents"):
        plan_jobs(_config(specs=["mlp2", str(other)]))
    out = tmp_path / "run"
    assert main(["run", "--specs", f"mlp2,{other}", "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "spec name 'mlp2'" in err and str(other) in err and not out.exists()
    # the same spec twice (a copy, a repeated seed or backend) is one set of jobs
    plan = plan_jobs(_config(specs=["mlp2", str(same)], seeds=[0, 0], backends=["torch"] * 2))
    assert [job.job_id for job in plan.jobs] == ["mlp2--torch--seed0"]


def test_job_errors_name_files_from_the_job_folder(tmp_path: Path) -> None:
    from harness.run.job_process import _job_relative

    work = folders.JobFolder.partial(tmp_path / "run", "mlp2--torch--seed0").path
    message = f"ExportError: converter failed. Full traceback: {work / 'model.onnx.log'}"
    assert _job_relative(message, work) == \
        "ExportError: converter failed. Full traceback: model.onnx.log"


def test_a_record_older_than_an_option_resumes_when_the_option_keeps_its_default(
        tmp_path: Path, fake_jobs: Callable[[], list[str]]) -> None:
    """A long run survives an upgrade that adds an option: a record without the field counts
    as recorded with the option's default (the behaviour before the option existed)."""
    out, lines = tmp_path / "run", []
    run_matrix(_config(), out, show=lines.append)
    for job in folders.finished_job_dirs(out):  # as written before strict_providers existed
        record = read_json(job / folders.JOB_FILE)
        del record["config"]["strict_providers"]
        record["config"]["config_hash"] = "older-key"
        write_json_atomic(job / folders.JOB_FILE, record)
    lines.clear()
    run_matrix(_config(), out, show=lines.append)
    assert "2 jobs: 2 already finished, 0 to run" in lines and len(fake_jobs()) == 2
    lines.clear()
    run_matrix(_config(strict_providers=True), out, show=lines.append)
    assert "2 finished jobs re-run: strict_providers changed false -> true" in lines


def test_a_jobs_file_is_a_one_line_error_and_a_corrupt_job_json_runs_again(
        tmp_path: Path, fake_jobs: Callable[[], list[str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["run", "--specs", "mlp2", "--backends", "torch", "--batch-sizes", "1",
            "--fresh-processes", "--out", str(out)]
    out.mkdir()
    (out / folders.JOBS_DIR).write_text("")
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines of piped output
    assert err.count("error:") == 1 and "Traceback" not in err
    assert f"{out / folders.JOBS_DIR}: a file: a run folder's `jobs` must be a folder" in err
    assert fake_jobs() == []
    (out / folders.JOBS_DIR).unlink()
    assert main(argv) == 0 and fake_jobs() == ["mlp2--torch--seed0"]
    (folders.job_dir(out, "mlp2--torch--seed0") / folders.JOB_FILE).write_text("{")
    capsys.readouterr()
    assert main(argv) == 0
    text = capsys.readouterr()
    assert "1 finished job re-run: job.json damaged (mlp2--torch--seed0)" in text.out
    assert "Traceback" not in text.err and len(fake_jobs()) == 2
