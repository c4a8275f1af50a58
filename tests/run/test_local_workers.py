"""`harness run --workers N`: N jobs at once on disjoint cores, each recorded where it ran; the
executor options checked before anything runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UsageError
from harness.records import folders
from harness.records.io import read_json
from harness.run.executors import ExecutorChoice, make_executor
from harness.run.executors.cores import claim_cores, split_cores, split_gpus
from harness.run.executors.local import LocalExecutor
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig
from harness.training.checkpoint import PROGRESS_FILE

from .stand_in import StandIn

CORES = len(os.sched_getaffinity(0))
needs_two_cores = pytest.mark.skipif(CORES < 2, reason="needs two usable cores")


@needs_two_cores
def test_two_workers_pin_each_job_to_its_own_cores(tmp_path: Path) -> None:
    stand_in = StandIn(tmp_path, seconds=0.5)  # long enough for the jobs to overlap
    config = RunConfig(specs=["mlp2", "mlp3"], backends=["keras", "torch"], batch_sizes=[1])
    lines: list[str] = []
    summary = run_matrix(config, tmp_path / "run", show=lines.append,
                         executor=LocalExecutor(workers=2, command=stand_in.command))
    assert summary["ok"] == 4 and sorted(stand_in.calls()) == sorted(
        p.name for p in folders.finished_job_dirs(tmp_path / "run"))
    placements = [read_json(p / folders.JOB_FILE)["placement"]
                  for p in folders.finished_job_dirs(tmp_path / "run")]
    assert {p["slot"] for p in placements} == {0, 1}
    by_slot = {p["slot"]: set(p["affinity"]) for p in placements}
    assert by_slot[0] and by_slot[1] and not by_slot[0] & by_slot[1]  # disjoint
    for placement in placements:  # what the job's process saw is what it was given
        assert placement["affinity"] == placement["cpus"]
    assert any(line.startswith("2 jobs at once: worker 0 on cores") for line in lines)
    assert not [line for line in lines if "framework notice" in line]  # in the job log only
    log = (tmp_path / "run" / folders.JOBS_DIR / "mlp2--keras--seed0" / folders.JOB_LOG_FILE)
    assert "framework notice" in log.read_text()


@needs_two_cores
def test_parallel_workers_start_the_largest_jobs_first(tmp_path: Path) -> None:
    """The run ends with its last job: a convolutional job started last would run alone."""
    stand_in = StandIn(tmp_path)
    config = RunConfig(specs=["mlp2", "softmax_sgd", "mlp3", "cnn3_k3"], backends=["torch"],
                       batch_sizes=[1])
    run_matrix(config, tmp_path / "run", show=lambda line: None,
               executor=LocalExecutor(workers=2, command=stand_in.command))
    calls = stand_in.calls()  # two start together: either may note itself first
    assert "cnn3_k3--torch--seed0" in calls[:2] and "softmax_sgd--torch--seed0" in calls[2:]


@needs_two_cores
def test_jobs_continuing_from_a_checkpoint_start_before_the_largest(tmp_path: Path) -> None:
    stand_in, lines = StandIn(tmp_path), []
    checkpoint = folders.checkpoint_dir(tmp_path / "run", "softmax_sgd--torch--seed0")
    checkpoint.mkdir(parents=True)
    (checkpoint / PROGRESS_FILE).write_text(json.dumps({"epochs_done": 4}))
    config = RunConfig(specs=["mlp2", "softmax_sgd", "mlp3", "cnn3_k3"], backends=["torch"],
                       batch_sizes=[1])
    run_matrix(config, tmp_path / "run", show=lines.append,
               executor=LocalExecutor(workers=2, command=stand_in.command))
    assert ("1 job(s) continue from their checkpoints: softmax_sgd--torch--seed0 after epoch 4"
            in lines)
    calls = stand_in.calls()
    assert set(calls[:2]) == {"softmax_sgd--torch--seed0", "cnn3_k3--torch--seed0"}


def test_one_worker_is_left_unpinned(tmp_path: Path) -> None:
    stand_in = StandIn(tmp_path)
    config = RunConfig(specs=["mlp2"], backends=["torch"], batch_sizes=[1])
    run_matrix(config, tmp_path / "run", show=lambda line: None,
               executor=LocalExecutor(command=stand_in.command))
    record = read_json(folders.job_dir(tmp_path / "run", "mlp2--torch--seed0") / folders.JOB_FILE)
    assert record["placement"]["cpus"] is None and record["placement"]["slot"] is None
    assert record["placement"]["affinity"] == sorted(os.sched_getaffinity(0))


def test_verbose_shows_everything_a_job_prints(tmp_path: Path) -> None:
    from harness.run.display import PlainDisplay

    stand_in, lines = StandIn(tmp_path), []
    config = RunConfig(specs=["mlp2"], backends=["torch"], batch_sizes=[1])
    run_matrix(config, tmp_path / "run", executor=LocalExecutor(command=stand_in.command),
               display=PlainDisplay(lines.append, verbose=True))
    assert any(line.endswith("mlp2--torch--seed0: a framework notice the terminal does not show")
               for line in lines)


def test_core_sets_are_disjoint_and_checked() -> None:
    if CORES >= 2:
        first, second = split_cores(2, None)
        assert first and second and not set(first) & set(second)
        assert [len(cores) for cores in split_cores(2, 1)] == [1, 1]
    with pytest.raises(UsageError, match=rf"--workers {CORES + 1}: more workers than the "
                                         rf"{CORES} cores"):
        split_cores(CORES + 1, None)
    with pytest.raises(UsageError, match=rf"--workers 1 with --threads {CORES + 1}"):
        split_cores(1, CORES + 1)


def test_each_worker_needs_a_gpu_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert split_gpus(2) == ["3", "5"]
    with pytest.raises(UsageError, match="--workers 3: the run uses CUDA .* 2 GPU"):
        split_gpus(3)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert split_gpus(2) == [None, None]  # no GPU: the jobs record CUDA as unavailable


def test_claimed_cores_are_not_claimed_twice() -> None:
    with claim_cores(1) as first:
        assert first is not None and len(first) == 1
        with claim_cores(CORES) as rest:
            assert rest is None  # one core is held: not enough free ones, none held
        with claim_cores(CORES - 1) as others:
            assert others is None or not set(others) & set(first)


@pytest.mark.parametrize(("argv", "message"), [
    (["--workers", "2", "--executor", "ray"], "--workers 2: only with --executor local"),
    (["--ray-address", "auto"], "--ray-address: only with --executor ray"),
    (["--fetch-models"], "--fetch-models: only with --executor ray"),
    (["--workers", str(CORES + 1)], f"--workers {CORES + 1}: more workers than the"),
])
def test_bad_executor_options_are_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        message: str) -> None:
    out = tmp_path / "run"
    assert main(["run", "--specs", "mlp2", "--backends", "torch", "--out", str(out),
                 *argv]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and err.count("error:") == 1 and "Traceback" not in err
    assert not out.exists()


def test_local_jobs_fork_from_warm_servers_unless_fresh_or_cuda() -> None:
    local = make_executor(ExecutorChoice(), threads=None, needs_gpu=False)
    assert isinstance(local, LocalExecutor) and local.slots == 1 and local.warm
    assert local.description.startswith("Each job forked from a warm process per framework")
    fresh = make_executor(ExecutorChoice(fresh_processes=True), threads=None, needs_gpu=False)
    assert not fresh.warm and fresh.description == ""
    cuda = make_executor(ExecutorChoice(), threads=None, needs_gpu=True)
    assert not cuda.warm  # a process forked after CUDA's start cannot use it: fresh ones
    with pytest.raises(UsageError, match="--executor nope: expected one of"):
        make_executor(ExecutorChoice(name="nope"), threads=None, needs_gpu=False)
