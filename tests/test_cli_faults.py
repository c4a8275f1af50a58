"""What the command line does when the machine, not the user, is at fault: a full disk, a
read-only folder, no CUDA, no data. One line naming the path or resource, exit 3, never a
traceback; a run stops cleanly (and resumes) rather than failing every job in turn.

No training: the filesystem errors are raised by stand-ins, and `harness run`'s jobs are
recorded by an in-process executor."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.commands import run as run_command
from harness.records import folders
from harness.records.io import RESULT_SCHEMA_VERSION, write_json_atomic
from harness.run import matrix
from harness.run.executors import JobEvents
from harness.run.folder import finish_job, fresh_partial_dir
from harness.run.job import Job, Placement

FULL = f"OSError: [Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}: 'metrics.json'"
RUN = ["run", "--specs", "mlp2", "--backends", "torch,keras"]
TRAIN = ["train", "--spec", "mlp2", "--backend", "torch", "--limit", "100", "--epochs", "1"]


class RecordingExecutor:
    """Starts no process: records each job ok, or failed with `errors[job_id]` at train."""

    name, description, slots = "recording", "", 1

    def __init__(self, errors: dict[str, str] | None = None) -> None:
        self.errors = errors or {}
        self.started: list[str] = []

    def run(self, run_dir: Path, jobs: Sequence[Job], events: JobEvents) -> None:
        for job in jobs:
            placement = Placement(executor="local")
            events.started(job, placement)
            self.started.append(job.job_id)
            events.line(job, "step train\n")
            error = self.errors.get(job.job_id)
            write_json_atomic(fresh_partial_dir(run_dir, job.job_id) / folders.JOB_FILE, {
                "schema_version": RESULT_SCHEMA_VERSION, "kind": "job", "job_id": job.job_id,
                "status": "failed" if error else "ok", "error": error,
                "failed_step": "train" if error else None, "config": job.record()})
            events.finished(job, finish_job(run_dir, job, None, placement))


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def error_lines(err: str) -> list[str]:
    """The `error:` lines (a download's own lines go before them)."""
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("error: ")]


@pytest.fixture()
def executor(monkeypatch: pytest.MonkeyPatch) -> RecordingExecutor:
    """`harness run` records its jobs with a RecordingExecutor (its `errors` settable)."""
    recording = RecordingExecutor()
    monkeypatch.setattr(run_command, "_executor", lambda args, config: recording)
    return recording


def test_a_full_disk_in_a_job_stops_the_run_with_one_line_and_resumes_later(
        tmp_path: Path, executor: RecordingExecutor, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The first job fails for want of space: the second would too, so it never starts; the
    line names the job's folder and says how to go on; the same command then finishes."""
    monkeypatch.setattr(matrix, "check_resources", lambda config, plan, show: None)
    out = tmp_path / "run"
    executor.errors = {"mlp2--torch--seed0": FULL}  # the first job planned
    assert main([*RUN, "--out", str(out)]) == 3
    line = one_error_line(capsys.readouterr().err)
    job_dir = folders.job_dir(out, "mlp2--torch--seed0")
    assert line == (f"error: {job_dir}: no space left on device (free space, then run the same "
                    "command again: finished jobs are kept)")
    assert executor.started == ["mlp2--torch--seed0"]  # keras' job was not started to fail
    assert (job_dir / folders.JOB_FILE).is_file()  # recorded failed: the next run re-runs it
    executor.errors = {}
    assert main([*RUN, "--out", str(out)]) == 0
    assert executor.started[1:] == ["mlp2--torch--seed0", "mlp2--keras--seed0"]


def test_a_job_failing_otherwise_does_not_stop_the_run(
        tmp_path: Path, executor: RecordingExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matrix, "check_resources", lambda config, plan, show: None)
    executor.errors = {"mlp2--torch--seed0": "ValueError: something else"}
    assert main([*RUN, "--out", str(tmp_path / "run")]) == 1
    assert executor.started == ["mlp2--torch--seed0", "mlp2--keras--seed0"]


@pytest.mark.parametrize(("code", "what", "hint"), [
    (errno.ENOSPC, "no space left on device", "free space, then run the same command again: "
                                              "finished jobs are kept"),
    (errno.EDQUOT, "disk quota exceeded", "free space"),
    (errno.EROFS, "read-only file system", "give write access to it, or write elsewhere"),
    (errno.EACCES, "permission denied", "give write access to it"),
])
def test_the_run_driver_out_of_space_or_access_says_one_line_exit_3(
        code: int, what: str, hint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def no_room(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code), str(tmp_path / "run" / folders.RUN_FILE))

    monkeypatch.setattr(matrix, "run_matrix", no_room)
    assert main([*RUN, "--out", str(tmp_path / "run")]) == 3
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {tmp_path / 'run' / folders.RUN_FILE}: {what} (")
    assert hint in line


def test_a_write_that_names_no_file_names_the_output_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A write to a file already open fails with no file name: the line names --out."""
    import harness.training

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(harness.training, "train_and_evaluate", full)
    assert main([*TRAIN, "--out", str(tmp_path / "t")]) == 3
    assert one_error_line(capsys.readouterr().err) == (
        f"error: {tmp_path / 't'}: no space left on device (free space, then run the same "
        "command again)")


def test_report_out_of_space_says_one_line_exit_3(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pandas")
    import harness.report

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    run = tmp_path / "run"
    (run / folders.JOBS_DIR).mkdir(parents=True)
    monkeypatch.setattr(harness.report, "write_report", full)
    assert main(["report", str(run)]) == 3
    assert one_error_line(capsys.readouterr().err).startswith(
        f"error: {run / folders.REPORT_DIR}: no space left on device")


def test_other_os_errors_are_not_taken_for_a_full_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing file inside the harness is a bug to see whole, not a resource line."""
    def missing(*args: Any, **kwargs: Any) -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "x")

    monkeypatch.setattr(matrix, "run_matrix", missing)
    with pytest.raises(FileNotFoundError):
        main([*RUN, "--out", str(tmp_path / "run")])


def test_report_on_a_folder_that_is_no_run_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "nope"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert "not a `harness run` folder" in one_error_line(capsys.readouterr().err)
    assert list(empty.iterdir()) == []


UNWRITABLE = [  # READ_ONLY: a folder nobody may write in; RUN_DIR: a run
    [*RUN, "--out", "READ_ONLY/run"],
    [*TRAIN, "--out", "READ_ONLY"],
    [*TRAIN, "--checkpoint", "READ_ONLY/state"],
    ["report", "RUN_DIR", "--out", "READ_ONLY/report"],
    ["compare", "RUN_DIR", "RUN_DIR", "--csv", "READ_ONLY/x.csv"],
    ["export", "--backend", "torch", "--spec", "mlp2", "--out", "READ_ONLY/x.onnx"],
]


def refused_in_one_line(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
                        ) -> str:
    """The one line of exit 2 that `argv` (READ_ONLY, RUN_DIR filled in) stops with."""
    run = tmp_path / "run"
    (run / folders.JOBS_DIR).mkdir(parents=True, exist_ok=True)
    argv = [arg.replace("READ_ONLY", str(tmp_path / "read_only")).replace("RUN_DIR", str(run))
            for arg in argv]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv", UNWRITABLE, ids=[" ".join(argv[:2]) for argv in UNWRITABLE])
def test_an_output_on_a_read_only_file_system_is_refused_before_anything_runs(
        argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """As a read-only mount answers (EROFS, root included), faked: nothing is mounted."""
    import tempfile

    read_only, make = tmp_path / "read_only", tempfile.mkdtemp

    def read_only_mount(*args: Any, dir: str, **kwargs: Any) -> str:  # noqa: A002
        if Path(dir) == read_only:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)
        return make(*args, dir=dir, **kwargs)

    read_only.mkdir()
    monkeypatch.setattr(tempfile, "mkdtemp", read_only_mount)
    err = refused_in_one_line(argv, tmp_path, capsys)
    assert f"cannot write in {read_only} (Read-only file system)" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
@pytest.mark.parametrize("argv", UNWRITABLE, ids=[" ".join(argv[:2]) for argv in UNWRITABLE])
def test_an_output_in_a_folder_without_write_access_is_refused(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "read_only").mkdir(mode=0o555)
    assert "cannot write in" in refused_in_one_line(argv, tmp_path, capsys)


@pytest.mark.parametrize("argv", [[*RUN, "--out", "/proc/harness-run"],
                                  ["export", "--backend", "torch", "--spec", "mlp2", "--out",
                                   "/proc/harness.onnx"]])
def test_an_output_under_proc_is_refused_even_for_root(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "cannot write in /proc" in refused_in_one_line(argv, tmp_path, capsys)


def test_run_checks_the_data_once_before_any_job_as_train_does(
        tmp_path: Path, executor: RecordingExecutor, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """--data-dir at an empty folder (no download there unasked): train's one line and exit
    3, no job started, no run folder made."""
    import harness.data.datasets

    def offline(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))

    monkeypatch.setattr(harness.data.datasets, "_fetch", offline)
    empty = tmp_path / "data"
    empty.mkdir()
    assert main([*TRAIN, "--data-dir", str(empty), "--out", str(tmp_path / "t")]) == 3
    said = error_lines(capsys.readouterr().err)
    assert said[0].startswith(f"error: {empty / 'mnist'}/") and "--download" in said[0]
    out = tmp_path / "run"
    assert main([*RUN, "--data-dir", str(empty), "--out", str(out)]) == 3
    assert error_lines(capsys.readouterr().err) == said
    assert executor.started == [] and not out.exists()


def test_run_refuses_a_backend_whose_framework_is_missing_before_any_job(
        tmp_path: Path, executor: RecordingExecutor, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import harness.backends

    monkeypatch.setattr(harness.backends, "not_installed",
                        lambda name: f"backend {name!r} needs x" if name == "keras" else None)
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 3
    assert one_error_line(capsys.readouterr().err) == "error: backend 'keras' needs x"
    assert executor.started == [] and not out.exists()


def test_run_without_backends_runs_every_installed_one_and_says_when_none_is(
        tmp_path: Path, executor: RecordingExecutor, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A user with some frameworks installed can run without --backends; none at all is one
    line, exit 3."""
    import harness.backends

    installed = {"keras", "torch"}
    monkeypatch.setattr(harness.backends, "not_installed",
                        lambda name: None if name in installed else f"backend {name!r} needs x")
    assert main(["run", "--specs", "mlp2", "--out", str(tmp_path / "run")]) == 0
    assert sorted(executor.started) == ["mlp2--keras--seed0", "mlp2--torch--seed0"]
    installed.clear()
    assert main(["run", "--specs", "mlp2", "--out", str(tmp_path / "none")]) == 3
    assert "no backend is installed" in one_error_line(capsys.readouterr().err)


def test_run_on_cuda_without_cuda_says_what_train_says_once(
        tmp_path: Path, executor: RecordingExecutor,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The real check, as `harness train` makes it: PyTorch made on CUDA (in a worker
    process for the run)."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    assert main([*TRAIN, "--device", "cuda", "--out", str(tmp_path / "t")]) == 3
    said = error_lines(capsys.readouterr().err)
    assert len(said) == 1 and said[0].startswith("error: PyTorch sees no usable CUDA device")
    out = tmp_path / "run"
    assert main(["run", "--specs", "mlp2", "--backends", "torch", "--device", "cuda",
                 "--out", str(out)]) == 3
    assert error_lines(capsys.readouterr().err) == said
    assert executor.started == [] and not out.exists()


def test_the_runs_failure_lines_name_the_step_or_none_never_at_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    failed = [{"job_id": "mlp2--torch--seed0", "failed_step": "export",
               "error": "OSError: [Errno 5] Input/output error"},
              {"job_id": "mlp2--keras--seed0", "failed_step": None,
               "error": "the job's process exited with status -9 (see job.log)"}]
    monkeypatch.setattr(matrix, "run_matrix", lambda *args, **kwargs: {
        "ok": 0, "jobs": 2, "failed": failed, "unavailable": []})
    assert main([*RUN, "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "failed: mlp2--torch--seed0 at export: OSError: [Errno 5] Input/output error\n" in err
    assert ("failed: mlp2--keras--seed0: the job's process exited with status -9 (see job.log)"
            in err)
    assert "None" not in err


def test_run_takes_dataset_and_download_as_train_does(
        tmp_path: Path, executor: RecordingExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    """--dataset is --set input.dataset=NAME for every spec; --download reaches the up-front
    data check (a named data folder is downloaded into only when asked)."""
    import harness.data.datasets

    asked: list[tuple[str, object]] = []
    monkeypatch.setattr(harness.data, "ensure_files",
                        lambda dataset, data_dir=None, download=None, **_: asked.append(
                            (dataset, download)) or {})
    out = tmp_path / "run"
    assert main([*RUN[:4], "torch", "--dataset", "fashion-mnist", "--download",
                 "--out", str(out)]) == 0
    assert asked == [("fashion-mnist", True)]
    (job_id,) = executor.started
    assert job_id.startswith("mlp2--") and "fashion-mnist" in job_id
