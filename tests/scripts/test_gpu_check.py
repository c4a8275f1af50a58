"""scripts/gpu_check.sh and its helpers, without running the check (CI runs its dry run:
.ci/run): the script's syntax and usage errors, the manifest it keeps, the study's parts (split,
judged, merged) and the packing of its folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.sh"
sys.path.insert(0, str(REPO / "scripts"))
import gpu_check_helpers as helpers  # noqa: E402

sys.path.pop(0)


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_the_script_parses_and_is_shellcheck_clean() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("args, expected", [
    (["--dry-run", "--bogus"], "--bogus: unknown option"),
    (["--dry-run", "--budget", "9min"], "--budget: 9min: expected whole seconds"),
    (["--dry-run", "--parallel", "0"], "--parallel: 0: expected 1 to 99"),
    (["--dry-run", "--data-dir", "/nonexistent/data"], "--data-dir: '/nonexistent/data'"),
])
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                               expected: str) -> None:
    result = run_script(*args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_no_output_folder_and_a_used_one_are_refused(tmp_path: Path) -> None:
    env = {key: value for key, value in __import__("os").environ.items() if key != "OUT"}
    assert "--out: give an output folder" in run_script("--dry-run", env=env).stderr
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.txt").write_text("x")
    result = run_script("--dry-run", "--out", str(used))
    assert result.returncode == 2 and "not empty" in result.stderr


def test_help_names_the_options() -> None:
    result = run_script("--help")
    assert result.returncode == 0 and "--dry-run" in result.stdout and "--out" in result.stdout


def test_the_manifest_keeps_every_step(tmp_path: Path) -> None:
    assert helpers.main(["start", "--out", str(tmp_path), "--mode", "dry-run", "--budget", "300",
                         "--invocation", "scripts/gpu_check.sh --dry-run",
                         "--settings", '{"device": "cpu"}']) == 0
    helpers.main(["step", str(tmp_path), "install", "ok", "0", "4.2", "--log", "logs/i.log"])
    helpers.main(["step", str(tmp_path), "bench-mlp5_bn", "failed", "1", "3", "--log",
                  "logs/b.log"])
    manifest = json.loads((tmp_path / helpers.MANIFEST).read_text())
    assert manifest["kind"] == "gpu-check" and manifest["mode"] == "dry-run"
    assert manifest["finished_utc"] is None and manifest["settings"] == {"device": "cpu"}
    assert [(s["name"], s["status"], s["rc"]) for s in manifest["steps"]] == [
        ("install", "ok", 0), ("bench-mlp5_bn", "failed", 1)]
    helpers.main(["step", str(tmp_path), "total", "failed", "1", "9", "--finish"])
    assert json.loads((tmp_path / helpers.MANIFEST).read_text())["finished_utc"]


def test_the_study_is_split_into_chunks_of_its_13_specs(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert helpers.main(["study-chunks", "2"]) == 0
    chunks = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    names = sorted(name for chunk in chunks for name in chunk)
    assert len(chunks) == 2 and len(names) == 13 == len(set(names))
    assert all(name.startswith("cnn") for name in names)
    helpers.main(["study-chunks", "1", "--first", "3"])
    assert capsys.readouterr().out.strip().count(",") == 2


def _job(part: Path, job_id: str, status: str, error: str | None = None,
         metrics: bool = True) -> None:
    folder = part / "jobs" / job_id
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"job_id": job_id, "status": status,
                                                 "error": error}))
    if metrics:
        (folder / "metrics.json").write_text("{}")
    (folder / "model.onnx").write_bytes(b"x" * 1000)
    (folder / "test_data_set_0").mkdir()
    (folder / "test_data_set_0" / "input_0.pb").write_bytes(b"x")


def test_a_keras_jax_export_without_tensorflow_is_expected_not_a_failure(tmp_path: Path) -> None:
    part = tmp_path / "keras-jax-seed0-part0"
    no_tf = ("BackendUnavailable: Keras on JAX exports to ONNX through Keras on TensorFlow and "
             "tf2onnx; tensorflow not installed")
    _job(part, "cnn3_k3--keras-jax--seed0", "failed", no_tf)
    _job(part, "cnn5_k3--keras-jax--seed0", "ok")
    assert helpers.main(["check-part", str(part), "2"]) == 0
    assert helpers.main(["check-part", str(part), "3"]) == 1  # a job never finished
    _job(part, "cnn7_k3--keras-jax--seed0", "failed", no_tf, metrics=False)  # not trained
    assert helpers.main(["check-part", str(part), "3"]) == 1


def test_merge_and_pack_leave_one_small_study_folder(tmp_path: Path) -> None:
    parts = [tmp_path / "torch-seed0-part0", tmp_path / "torch-seed1-part0"]
    for seed, part in enumerate(parts):
        _job(part, f"cnn3_k3--torch--seed{seed}", "ok")
        (part / "specs").mkdir()
        (part / "specs" / "cnn3_k3.yaml").write_text("name: cnn3_k3\n")
        (part / "run.json").write_text("{}")
    target = tmp_path / "out" / "study"
    assert helpers.main(["merge", str(target), *map(str, parts)]) == 0
    assert sorted(p.name for p in (target / "jobs").iterdir()) == [
        "cnn3_k3--torch--seed0", "cnn3_k3--torch--seed1"]
    assert (target / "parts" / "torch-seed1-part0.run.json").is_file()
    assert helpers.main(["pack", str(tmp_path / "out")]) == 0
    job = target / "jobs" / "cnn3_k3--torch--seed0"
    assert sorted(p.name for p in job.iterdir()) == ["job.json", "metrics.json"]
    assert helpers.main(["merge", str(tmp_path / "empty"), str(tmp_path / "none")]) == 1
