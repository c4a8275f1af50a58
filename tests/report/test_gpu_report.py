"""`harness report` on a scripts/gpu_check.sh folder (hand-set records, no training, no GPU): a
dry run says plainly that nothing ran on a GPU, a GPU run shows its CUDA figures with intervals,
and a folder that is not one is one line and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pandas")  # the report extras; absent in a minimal install
pytest.importorskip("matplotlib")

from harness.cli import main  # noqa: E402
from harness.commands import report as report_command  # noqa: E402
from harness.report import gpu  # noqa: E402
from harness.report.gpu_latency import median_estimate, ratio_estimate  # noqa: E402
from harness.report.gpu_report import write_gpu_report  # noqa: E402

from .fakes import latency_record, write_study_job  # noqa: E402

STUDY_SPECS = ("cnn3_k3", "cnn5_k3")  # of the zoo's cnn_depth_kernel study
P50_MS = {"onnxruntime": {1: 0.1}, "native": {1: 0.2}}
UNAVAILABLE = "CUDAExecutionProvider was requested but the session runs on ['CPUExecutionProvider']"


def _with_interval(record: dict[str, Any]) -> dict[str, Any]:
    if record["stats"]:
        p50 = record["stats"]["p50_ms"]
        record["stats"].update(p50_ci_low_ms=p50 * 0.9, p50_ci_high_ms=p50 * 1.1)
    return record


def _bench(folder: Path, on_gpu: bool) -> None:
    records = [latency_record("native", "torch", "cpu", "native", 32, 2.0),
               latency_record("onnxruntime", "torch", "cpu", "session_run", 32, 1.0),
               latency_record("native", "torch", "cuda", "native", 32, 0.4 if on_gpu else None),
               latency_record("onnxruntime", "torch", "cuda", "io_binding", 32,
                              0.2 if on_gpu else None),
               latency_record("onnxruntime", "torch", "cuda", "session_run", 32,
                              0.3 if on_gpu else None)]
    for record in records:
        if record["status"] != "ok":
            record["reason"] = UNAVAILABLE
    path = folder / "bench" / "mlp5_bn" / "mlp5_bn.latency.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema_version": 1, "kind": "latency",
                                "spec": {"name": "mlp5_bn"},
                                "records": [_with_interval(r) for r in records]}))


def _placement(folder: Path, on_gpu: bool) -> None:
    nodes = [{"node": "node_Gemm_0", "op": "Gemm", "provider": "CPUExecutionProvider",
              "compute": True, "fallback": False}]
    cuda: dict[str, Any] = {"file": "mlp5_bn/mlp5_bn.torch.onnx", "provider": "cuda"}
    cuda.update({"status": "ok", "nodes": [
        {"node": "node_Gemm_0", "op": "Gemm", "provider": "CUDAExecutionProvider",
         "compute": True, "fallback": False},
        {"node": "node_Shape_1", "op": "Shape", "provider": "CPUExecutionProvider",
         "compute": False, "fallback": False}]} if on_gpu else
        {"status": "unavailable", "reason": UNAVAILABLE})
    (folder / "placement.json").write_text(json.dumps({"files": [
        {"file": "mlp5_bn/mlp5_bn.torch.onnx", "provider": "cpu", "status": "ok",
         "nodes": nodes}, cuda]}))


def _facts(folder: Path, on_gpu: bool) -> None:
    (folder / "facts").mkdir()
    torch = {"version": "2.11.0+cu130" if on_gpu else "2.13.0+cpu",
             "cuda_build": "13.0" if on_gpu else None, "cuda_available": on_gpu}
    (folder / "facts" / "versions.json").write_text(json.dumps({
        "versions": {"python": "3.12.3", "packages": {"torch": torch["version"]}},
        "torch": torch, "jax": {"error": "ModuleNotFoundError: No module named 'jax'"},
        "onnxruntime": {"package": "onnxruntime-gpu", "cuda_version": "13.0"}}))
    if on_gpu:
        (folder / "facts" / "nvidia-smi.csv").write_text(
            "name, driver_version, memory.total [MiB], compute_cap, pci.bus_id\n"
            "NVIDIA H100 80GB HBM3, 580.65.06, 81559 MiB, 9.0, 00000000:00:07.0\n")


def make_folder(tmp_path: Path, mode: str, steps: list[dict[str, Any]] | None = None) -> Path:
    """A gpu_check.sh folder as the script leaves it, beside a fake committed CPU run."""
    on_gpu = mode == "gpu"
    cpu = tmp_path / "cpu-run"
    for spec in STUDY_SPECS:
        for backend in ("torch", "keras"):
            write_study_job(cpu, spec, backend, 0, 0.99, 10.0, P50_MS, epochs=12)
    folder = tmp_path / "check"
    folder.mkdir()
    (folder / gpu.GPU_MANIFEST).write_text(json.dumps({
        "schema_version": 1, "kind": "gpu-check", "mode": mode,
        "started_utc": "2026-12-07T10:00:00Z", "finished_utc": "2026-12-07T10:08:00Z",
        "commit": "abc123", "cpu_reference": str(cpu),
        "steps": steps if steps is not None else [
            {"name": "install", "status": "ok", "rc": 0, "seconds": 4.0,
             "log": "logs/install.log", "note": None}]}))
    _facts(folder, on_gpu)
    _bench(folder, on_gpu)
    _placement(folder, on_gpu)
    seeds = (0, 1, 2) if on_gpu else (0,)
    for spec in STUDY_SPECS:
        for backend in ("torch", "keras-jax"):
            for seed in seeds:
                write_study_job(folder / "study", spec, backend, seed, 0.988 + seed * 0.001,
                                1.0, P50_MS, epochs=12 if on_gpu else 1)
    return folder


def test_dry_run_report_says_cpu_and_shows_no_cuda_figure(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    folder = make_folder(tmp_path, "dry-run")
    assert main(["report", str(folder)]) == 0
    text = (folder / "report" / "report.md").read_text()
    assert "dry run on the CPU" in text and "no GPU was used" in text
    assert gpu.NO_GPU in text
    latency = (folder / "report" / "tables" / "gpu_latency.csv").read_text()
    assert "pytorch_cuda_p50" in latency
    rows = text.split('<a id="t-gpu_latency"></a>')[1].split("<a id=")[0]
    assert "| mlp5_bn | 32 | not measured: no GPU | not measured: no GPU |" in rows
    assert "2.000 [1.800–2.200]" in rows  # the CPU figure, with its interval
    study = text.split('<a id="t-gpu_study"></a>')[1].split("<a id=")[0]
    assert "not comparable (1 of 12 epochs)" in study and "99.00 %" in study
    assert "node_Gemm_0" in text  # every node of the placement
    assert "(report.html" not in capsys.readouterr().err


def test_gpu_report_shows_versions_study_and_cuda_ratio_with_interval(tmp_path: Path) -> None:
    out = write_gpu_report(make_folder(tmp_path, "gpu"))
    text = (out / "report.md").read_text()
    assert "NVIDIA H100 80GB HBM3" in text and "580.65.06" in text and "13.0" in text
    assert "Dry run" not in text
    # ORT CUDA io_binding 0.2 [0.18-0.22] over PyTorch cuda 0.4 [0.36-0.44]
    assert "0.500x [0.409–0.611]" in text
    study = text.split('<a id="t-gpu_study"></a>')[1].split("<a id=")[0]
    assert "| cnn3_k3 | keras-jax |" in study and "| keras |" in study
    assert "98.90 % ± 0.10 (n=3)" in study and "agree (tolerance 0.50 pp)" in study
    assert "CPUExecutionProvider: 1, CUDAExecutionProvider: 1" in text


def test_failed_step_and_unfinished_run_are_warned(tmp_path: Path) -> None:
    steps = [{"name": "bench-mlp5_bn", "status": "failed", "rc": 1, "seconds": 3.0,
              "log": "logs/bench-mlp5_bn.log", "note": None}]
    folder = make_folder(tmp_path, "gpu", steps)
    manifest = json.loads((folder / gpu.GPU_MANIFEST).read_text())
    manifest["finished_utc"] = None
    (folder / gpu.GPU_MANIFEST).write_text(json.dumps(manifest))
    text = (write_gpu_report(folder) / "report.md").read_text()
    assert "step bench-mlp5_bn failed (exit status 1); its log: logs/bench-mlp5_bn.log" in text
    assert "did not finish" in text


@pytest.mark.parametrize("content, expected", [
    ("{not json", "unreadable"),
    ('{"kind": "latency"}', "not a gpu-check record"),
    ('{"kind": "gpu-check", "mode": "cuda", "steps": []}', "damaged: mode must be one of"),
])
def test_a_damaged_manifest_is_one_line_and_exit_2(tmp_path: Path, content: str, expected: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "check"
    folder.mkdir()
    (folder / gpu.GPU_MANIFEST).write_text(content)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (folder / "report" / "report.md").exists()


def test_benchmark_json_is_refused_for_a_gpu_folder(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path, "dry-run")
    extra = tmp_path / "bench.json"
    extra.write_text("{}")
    assert main(["report", str(folder), "--benchmark-json", str(extra)]) == 2
    assert "--benchmark-json: not taken" in capsys.readouterr().err


def test_the_command_knows_the_manifest_name() -> None:
    assert report_command.GPU_MANIFEST == gpu.GPU_MANIFEST


def test_ratio_bounds_come_from_both_intervals() -> None:
    ort = median_estimate(_with_interval(latency_record("onnxruntime", "torch", "cuda",
                                                        "io_binding", 1, 1.0)))
    torch = median_estimate(_with_interval(latency_record("native", "torch", "cuda",
                                                          "native", 1, 2.0)))
    assert ort is not None and torch is not None
    ratio = ratio_estimate(ort, torch)
    assert ratio.estimate == pytest.approx(0.5)
    assert ratio.ci_low == pytest.approx(0.9 / 2.2) and ratio.ci_high == pytest.approx(1.1 / 1.8)
    unavailable = latency_record("native", "torch", "cuda", "native", 1, None)
    assert median_estimate(unavailable) is None
