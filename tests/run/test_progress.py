"""What a user watches: an ETA from the work left (not the job count), progress within an
epoch, and each part of a job's time in its record."""

from __future__ import annotations

import errno
import io
import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from harness.records import folders
from harness.records.models import job_record
from harness.run import progress
from harness.run.display import PlainDisplay, RichDisplay
from harness.run.job import Placement, step_started
from harness.run.job_process import PHASES, EpochProgress, _split_phases
from harness.run.matrix import ProgressTracker
from harness.run.plan import RunConfig, plan_jobs
from harness.run.progress import Eta, expected_work, macs_per_image, model_kind
from harness.spec import infer, load_spec


def test_work_counts_a_convolution_at_every_output_position() -> None:
    mlp, cnn = load_spec("mlp2"), load_spec("cnn3_k3")
    assert macs_per_image(mlp) == infer(mlp).total_params
    assert macs_per_image(cnn) > 10 * infer(cnn).total_params
    plan = plan_jobs(RunConfig(specs=["mlp2"], backends=["torch"], epochs=2, limit=500))
    assert expected_work(plan.jobs[0], plan.specs["mlp2"]) == 2 * 500 * macs_per_image(mlp)
    # the epochs a checkpoint holds are not work left
    assert expected_work(plan.jobs[0], plan.specs["mlp2"], 1) == 500 * macs_per_image(mlp)


def test_eta_learns_seconds_per_work_and_overhead_per_backend() -> None:
    work = {"a": 1.0, "b": 3.0, "c": 10.0, "k": 10.0}
    eta = Eta(work=work, backend={"a": "torch", "b": "torch", "c": "torch", "k": "keras"})
    assert eta.text(["a", "b", "c", "k"]) == "ETA learning"
    eta.finished("a", 12.0)  # 10 s of overhead + 2 s per unit of work
    eta.finished("b", 16.0)
    assert eta.seconds_left(["c"]) == pytest.approx(30.0)  # not the mean job's 14 s
    assert eta.seconds_left(["k"]) == pytest.approx(30.0)  # keras: nothing seen, the pooled fit
    eta.finished("k", 50.0)
    assert eta.seconds_left(["k"]) == pytest.approx(50.0)  # one keras job: proportional
    two = Eta(work=work, backend={"a": "torch", "b": "torch", "c": "torch"}, slots=2)
    two.finished("a", 12.0)
    two.finished("b", 16.0)
    assert two.seconds_left(["c", "c"]) == pytest.approx(30.0)
    assert two.text(["c"] * 300) == "ETA 1h15m"


def test_eta_learns_convolutions_apart_from_dense_models() -> None:
    """A CNN's multiply-accumulates run faster than a small MLP's: once a CNN has finished,
    the CNNs left are estimated at its rate, not at the MLPs'."""
    assert model_kind(load_spec("cnn3_k3")) == "conv" and model_kind(load_spec("mlp2")) == "dense"
    work = {"m1": 1.0, "m2": 2.0, "c1": 100.0, "c2": 100.0, "k": 100.0}
    kind = {"m1": "dense", "m2": "dense", "c1": "conv", "c2": "conv", "k": "conv"}
    eta = Eta(work=work, backend={"m1": "torch", "m2": "torch", "c1": "torch", "c2": "torch",
                                  "k": "keras"}, kind=kind)
    eta.finished("m1", 10.0)  # dense: 10 s per unit of work
    eta.finished("m2", 20.0)
    assert eta.seconds_left(["c2"]) is None  # no CNN seen: not at the MLPs' rate
    assert eta.text(["c2", "m2"]) == "ETA learning, >0m20s"  # what it can say: m2's 20 s
    eta.finished("c1", 50.0)  # 0.5 s per unit
    assert eta.seconds_left(["c2"]) == pytest.approx(50.0)
    assert eta.seconds_left(["k"]) == pytest.approx(50.0)  # keras CNN: torch's CNN rate
    assert eta.seconds_left(["m2"]) == pytest.approx(20.0)


def test_a_resumed_run_estimates_from_the_jobs_its_folder_already_holds(
        tmp_path: Path) -> None:
    """Hours into a long run, a restarted `harness run` has an ETA from its start: it learns
    from the finished jobs' records as resume read them (a resumed training's seconds against
    its epochs after the checkpoint), not from failed, unfinished or older ones."""
    plan = plan_jobs(RunConfig(specs=["mlp2", "mlp3"], backends=["torch"], epochs=4,
                               limit=500, seeds=[0, 1]))
    first, second, third, last = plan.jobs
    work = expected_work(first, plan.specs[first.spec])
    finished = {
        # resumed after epoch 2 of 4: 30 s for half the work, i.e. 60 s for all of it
        first.job_id: job_record(first.job_id, first.record(), None, phases={"total": 30.0},
                                 resumed={"after_epoch": 2, "times": 1,
                                          "earlier_seconds": 40.0}),
        second.job_id: job_record(second.job_id, second.record(), None, status="failed",
                                  phases={"total": 1.0}),
        third.job_id: job_record(third.job_id, third.record(), None)}  # no phases: older
    shown: list[str] = []
    display = PlainDisplay(shown.append)
    todo = [second, third, last]
    assert ProgressTracker(plan, todo, 1, display).eta.text(
        [j.job_id for j in todo]) == "ETA learning"
    tracker = ProgressTracker(plan, todo, 1, display, run_dir=tmp_path, finished=finished)
    expected = sum(60.0 * expected_work(job, plan.specs[job.spec]) / work for job in todo)
    assert tracker.eta.seconds_left([job.job_id for job in todo]) == pytest.approx(expected)


def test_the_eta_says_learning_until_a_job_of_each_kind_left_has_finished() -> None:
    """Two CNNs then two MLPs: after the CNNs the MLPs are not promised at a CNN's pace
    (`ETA 0m00s` with two jobs to run); the ETA says it is learning until an MLP finished."""
    plan = plan_jobs(RunConfig(specs=["cnn3_k3", "mlp2"], backends=["keras", "torch"],
                               epochs=1, limit=500))
    shown: list[str] = []
    tracker = ProgressTracker(plan, plan.jobs, 1, PlainDisplay(shown.append))
    for job, seconds in zip(plan.jobs, (30.0, 30.0, 10.0, 10.0), strict=True):
        tracker.finished(job, job_record(job.job_id, job.record(), None,
                                         phases={"total": seconds}))
    assert [line.split("]")[0] for line in shown] == [
        "[1/4 ETA learning, >0m30s", "[2/4 ETA learning", "[3/4 ETA 0m10s", "[4/4 ETA 0m00s"]


def test_the_eta_never_says_0m00s_while_a_job_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    eta = Eta(work={"a": 1.0, "b": 1.0}, backend={"a": "torch", "b": "torch"})
    eta.finished("a", 10.0)
    eta.started("b")
    clock[0] += 9.7
    assert eta.text([]) == "ETA 0m01s"  # 0.3 s left: rounded up
    clock[0] += 5.0
    assert eta.text([]) == "ETA learning"  # b outran its estimate: no time is known


def test_progress_within_an_epoch_measures_against_the_epoch_before(
        capsys: pytest.CaptureFixture[str]) -> None:
    with EpochProgress(3, every_s=0.01) as progress:
        assert progress.line().startswith("progress epoch 1/3 ") and "%" not in progress.line()
        progress.epoch_finished(SimpleNamespace(epoch=1, train_loss=0.5, train_accuracy=0.9,
                                                seconds=1.0), 3)
        assert progress.line().startswith("progress epoch 2/3 ") and "%" in progress.line()
        printed, deadline = "", time.monotonic() + 30
        while "\nprogress epoch 2/3 " not in printed and time.monotonic() < deadline:
            time.sleep(0.02)  # until its thread has printed a line
            printed += capsys.readouterr().out
    assert "epoch 1/3 loss 0.5000 acc 0.9000 1.00s\n" in printed
    assert "\nprogress epoch 2/3 " in printed


def test_a_resumed_training_shows_the_epoch_it_continues_with(
        capsys: pytest.CaptureFixture[str]) -> None:
    with EpochProgress(12, every_s=60) as progress:
        progress.resumed(7)
        assert progress.line().startswith("progress epoch 8/12 ")
    assert "progress resumed from its checkpoint after epoch 7/12\n" in capsys.readouterr().out


def test_phases_split_each_step_by_what_its_records_time() -> None:
    """From the training and export records the job holds in memory."""
    metrics = {"history": [{"seconds": 2.0}, {"seconds": 3.0}], "wall_seconds": 6.0}
    export = {"seconds": {"convert": 1.5, "parity": 0.5}}
    phases = _split_phases({"train": 10.0, "export": 2.5, "latency": 4.0}, metrics, export)
    assert phases == {"train_setup": 4.0, "epochs": 5.0, "evaluation": 1.0, "export": 2.0,
                      "parity": 0.5, "latency": 4.0}
    assert list(phases) == [name for name in PHASES if name in phases]
    # a training that wrote no record: its step is all set-up
    assert _split_phases({"train": 1.0}, None, None) == {"train_setup": 1.0}


def test_displays_show_progress_lines_and_keep_the_rest_in_the_log() -> None:
    lines: list[str] = []
    plain = PlainDisplay(lines.append)
    plain.job_started("job", "[1/2 ETA ?]")
    plain.job_line("job", "I0000 cudart_stub.cc:31] Could not find cuda drivers\n")
    plain.job_line("job", "progress epoch 1/3 10s\n")
    plain.job_finished("job", "[1/2 ETA ?] job: ok")
    assert lines == ["[1/2 ETA ?] job: progress epoch 1/3 10s", "[1/2 ETA ?] job: ok"]

    output = io.StringIO()
    rich = RichDisplay(Console(file=output, force_terminal=True, width=120))
    rich.overall(0, 2, "ETA ?")
    rich.job_started("job", "[1/2 ETA ?]")
    rich.job_line("job", "I0000 cudart_stub.cc:31] Could not find cuda drivers\n")
    rich.job_line("job", "step train\n")
    rich.job_finished("job", "[1/2 ETA 1m00s] job: ok")
    rich.close()
    shown = output.getvalue()
    assert "[1/2 ETA 1m00s] job: ok" in shown and "cudart" not in shown


def test_each_job_bar_counts_its_epochs_once_known() -> None:
    output = io.StringIO()
    rich = RichDisplay(Console(file=output, force_terminal=True, width=120))
    rich.overall(1, 4, "ETA learning")
    rich.job_started("starting-job", "[2/4 ETA learning]", 15)
    rich.job_started("resumed-job", "[3/4 ETA learning]")
    rich.job_started("training-job", "[4/4 ETA learning]")
    rich.job_line("resumed-job", "progress resumed from its checkpoint after epoch 7/12\n")
    rich.job_line("training-job", "epoch 1/3 loss 0.5000 acc 0.9000 1.00s\n")
    rich.job_line("training-job", "progress epoch 2/3 10s ~50%\n")
    rich.close()
    # the last frame drawn, as words: no colours, cursor moves or columns' padding
    shown = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", " ", output.getvalue()).split())
    assert "/?" not in shown  # no `0/?` for a job whose epochs are not known yet
    assert "1/4 ETA learning" in shown
    assert "epochs 7/12 progress resumed" in shown
    assert "epochs 0/15 starting" in shown  # the plan's epochs, before any epoch line
    assert "epochs 1/3 progress epoch 2/3 10s ~50%" in shown


def test_a_job_that_died_without_recording_its_step_is_shown_at_the_step_it_was_in() -> None:
    """A process killed (or out of space) before its job.json: the record names no step, so
    the line names the step the job's output last started, never "at None"."""
    plan = plan_jobs(RunConfig(specs=["mlp2"], backends=["torch", "keras"], epochs=1))
    first, second = plan.jobs
    shown: list[str] = []
    tracker = ProgressTracker(plan, plan.jobs, 1, PlainDisplay(shown.append))
    for job, steps in ((first, ["step train\n", "step export\n"]), (second, [])):
        tracker.started(job, Placement(executor="local"))
        for line in steps:
            tracker.line(job, line)
        tracker.finished(job, job_record(job.job_id, job.record(), None, status="failed",
                                         error="the job's process exited"))
    assert shown[-2].endswith(f"{first.job_id}: FAILED at export: the job's process exited")
    assert shown[-1].endswith(f"{second.job_id}: FAILED: the job's process exited")
    assert step_started("step latency\n") == "latency" and step_started("epoch 1/2") is None


def test_a_job_out_of_space_stops_the_run_naming_its_folder(tmp_path: Path) -> None:
    plan = plan_jobs(RunConfig(specs=["mlp2"], backends=["torch"], epochs=1))
    (job,) = plan.jobs
    tracker = ProgressTracker(plan, plan.jobs, 1, PlainDisplay(lambda line: None),
                              run_dir=tmp_path)
    tracker.started(job, Placement(executor="local"))
    full = job_record(job.job_id, job.record(), None, status="failed", failed_step="train",
                      error=f"OSError: [Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}: "
                            "'x.npz'")
    with pytest.raises(OSError, match="No space left on device") as stop:
        tracker.finished(job, full)
    assert stop.value.errno == errno.ENOSPC
    assert stop.value.filename == str(folders.job_dir(tmp_path, job.job_id))


def test_a_job_without_a_record_gets_the_step_and_last_line_of_its_log(tmp_path: Path) -> None:
    """finish_job for a process that died before its job.json: the failed record names the
    step its job.log last started and ends with the log's last line (e.g. the OSError)."""
    from harness.records import folders
    from harness.run.folder import finish_job, fresh_partial_dir

    plan = plan_jobs(RunConfig(specs=["mlp2"], backends=["torch"], epochs=1))
    (job,) = plan.jobs
    work = fresh_partial_dir(tmp_path, job.job_id)
    (work / folders.JOB_LOG_FILE).write_text(
        "step train\nepoch 1/1 loss 0.5\nstep export\n"
        "OSError: [Errno 28] No space left on device: 'model.onnx'\n")
    record = finish_job(tmp_path, job, "the job's process exited with status 1")
    assert record.failed_step == "export"
    assert (record.error or "").endswith("its output ended with: OSError: [Errno 28] No space "
                                         "left on device: 'model.onnx'")
