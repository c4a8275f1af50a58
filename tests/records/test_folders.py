"""A job folder's files by name (JobFolder): where a job in flight and a finished one live."""

from __future__ import annotations

from pathlib import Path

from harness.records import folders
from harness.records.folders import JobFolder


def test_a_job_folder_names_each_of_its_files(tmp_path: Path) -> None:
    folder = JobFolder.of(tmp_path, "mlp2--torch--seed0")
    assert folder.path == tmp_path / "jobs" / "mlp2--torch--seed0" == folders.job_dir(
        tmp_path, "mlp2--torch--seed0")
    assert [path.name for path in (
        folder.job, folder.metrics, folder.onnx, folder.export_record, folder.latency,
        folder.log, folder.spec, folder.final_weights, folder.test_outputs)] == [
        "job.json", "metrics.json", "model.onnx", "model.onnx.json", "latency.json", "job.log",
        "spec.yaml", "final_weights.npz", "test_outputs.npz"]
    assert all(path.parent == folder.path for path in (folder.job, folder.file("model.pt")))


def test_a_job_in_flight_is_hidden_until_its_record_is_there(tmp_path: Path) -> None:
    partial = JobFolder.partial(tmp_path, "mlp2--torch--seed0")
    assert partial.path == tmp_path / "jobs" / ".mlp2--torch--seed0.partial"
    partial.path.mkdir(parents=True)
    partial.job.write_text("{}")
    unfinished = JobFolder.of(tmp_path, "mlp3--torch--seed0")
    unfinished.path.mkdir()  # no job.json: not finished
    finished = JobFolder.of(tmp_path, "mlp2--keras--seed0")
    finished.path.mkdir()
    finished.job.write_text("{}")
    assert folders.finished_jobs(tmp_path) == [finished]
    assert folders.finished_job_dirs(tmp_path) == [finished.path]
