"""`harness bench`: latency records for ONNX Runtime and the frameworks, honest about what could
not run; training speed from runs; the environment's GPU/ORT build capture; the benchmark suite
writes JSON that pytest-benchmark can read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from harness.backends import BackendUnavailable  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.export.driver import export_model, weights_source  # noqa: E402
from harness.latency import bench  # noqa: E402
from harness.latency import native as bench_native  # noqa: E402
from harness.measure import environment as env  # noqa: E402
from harness.records.io import read_json  # noqa: E402
from harness.report.benchmarks import load_benchmark_json  # noqa: E402
from harness.training import (  # noqa: E402
    EpochRecord,
    epoch_timing,
    runs,  # noqa: E402
)

FRAMEWORKS = {"torch": "torch", "keras": "tensorflow"}
FAST: dict[str, Any] = {"warmup": 1, "min_runs": 3, "min_seconds": 0.0}
RECORD_FIELDS = {"runtime", "backend", "provider", "provider_used", "mode", "batch_size",
                 "status", "reason", "threads", "graph_optimization_level", "stats"}
ROOT = Path(__file__).resolve().parents[1]


def _installed() -> list[str]:
    names = []
    for name, module in FRAMEWORKS.items():
        try:
            __import__(module)
        except ImportError:
            continue
        names.append(name)
    return names


def _cuda_usable() -> bool:
    from conftest import cuda_available

    return cuda_available()[0]


@pytest.fixture(scope="module")
def latency(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    backends = _installed()
    if not backends:
        pytest.skip("neither torch nor tensorflow is installed")
    out = tmp_path_factory.mktemp("bench")
    result = bench.bench_spec("mlp2", backends=backends, providers=["cpu", "cuda"],
                              batch_sizes=[1, 4], out_dir=out, **FAST)
    return result, out


def test_latency_json_has_ok_cpu_records_for_onnxruntime_and_native(latency) -> None:
    result, out = latency
    written = read_json(out / "mlp2.latency.json")
    assert written["kind"] == "latency" and written["schema_version"] == 1
    assert written["spec"]["name"] == "mlp2" and written["spec"]["hash"]
    assert written["records"] == json.loads(json.dumps(result["records"]))
    for record in result["records"]:
        assert set(record) >= RECORD_FIELDS
    cpu = [r for r in result["records"] if r["provider"] == "cpu"]
    for backend in result["settings"]["backends"]:
        for runtime, used in (("onnxruntime", "CPUExecutionProvider"), ("native", None)):
            rows = [r for r in cpu if r["backend"] == backend and r["runtime"] == runtime]
            assert sorted(r["batch_size"] for r in rows) == [1, 4]
            for r in rows:
                assert r["status"] == "ok", r["reason"]
                assert r["stats"]["runs"] >= 3 and r["stats"]["p50_ms"] > 0
                assert r["stats"]["batch_size"] == r["batch_size"]
                assert used is None or r["provider_used"] == used
                assert "gpu" not in r["provider_used"].lower()
        assert {(s["batch_size"], s["mode"]) for s in result["speedups"]
                if s["backend"] == backend and s["provider"] == "cpu"} == {
            (1, "session_run"), (4, "session_run")}
    assert result["weights"][result["settings"]["backends"][0]]["source"] == "initial"


def test_cuda_records_say_unavailable_with_a_reason(latency) -> None:
    if _cuda_usable():
        pytest.skip("a usable GPU is present: CUDA records may be ok here")
    result, _ = latency
    cuda = [r for r in result["records"] if r["provider"] == "cuda"]
    assert {r["mode"] for r in cuda if r["runtime"] == "onnxruntime"} == {"io_binding",
                                                                          "session_run"}
    assert {r["runtime"] for r in cuda} == {"onnxruntime", "native"}
    for record in cuda:
        assert record["status"] == "unavailable" and record["stats"] is None
        assert record["reason"]
        assert record["provider_used"] is None  # never CPU numbers under a CUDA label
    assert not [s for s in result["speedups"] if s["provider"] == "cuda"]


def test_environment_records_gpu_and_onnxruntime_build(latency) -> None:
    environment = latency[0]["environment"]
    assert "gpu" in environment and "onnxruntime_build" in environment
    build = environment["onnxruntime_build"]
    assert "CPUExecutionProvider" in build["available_providers"]
    assert {"cuda_version", "cudnn_version", "device", "version"} <= set(build)
    assert set(environment["backend"]) == set(latency[0]["settings"]["backends"])


def test_gpu_capture_reads_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 550.54.15'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    env.gpus.cache_clear()
    try:
        assert env.gpus() == [{"name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15"}]
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        env.gpus.cache_clear()
        assert env.gpus() is None
    finally:
        env.gpus.cache_clear()


def test_missing_framework_gives_unavailable_records(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if "torch" not in _installed():
        pytest.skip("torch is not installed")
    real = bench_native.get_backend

    def fake(name: str, device: str = "cpu", threads: int | None = None, **options: Any) -> Any:
        if name == "keras":
            raise BackendUnavailable("backend 'keras' needs a framework that is not installed "
                                     "(tensorflow); install it with: pip install -e '.[keras]'")
        return real(name, device=device, threads=threads, **options)

    monkeypatch.setattr(bench_native, "get_backend", fake)
    result = bench.bench_spec("mlp2", backends=["keras", "torch"], providers=["cpu"],
                              batch_sizes=[2], out_dir=tmp_path, **FAST)
    keras = [r for r in result["records"] if r["backend"] == "keras"]
    assert {r["runtime"] for r in keras} == {"onnxruntime", "native"}
    assert all(r["status"] == "unavailable" and "pip install" in r["reason"] for r in keras)
    torch_rows = [r for r in result["records"] if r["backend"] == "torch"]
    assert torch_rows and all(r["status"] == "ok" for r in torch_rows)


def test_an_export_of_the_same_weights_is_reused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if "torch" not in _installed():
        pytest.skip("torch is not installed")
    path = tmp_path / "mlp2.torch.onnx"
    export_model("mlp2", "torch", path, limit_test=20)
    source = weights_source("mlp2", None)
    x = bench.input_batch(source, 2)
    records = bench.bench_backend(source, "torch", providers=["cpu"], batch_sizes=[2],
                                  onnx_path=path, x=x, **FAST)
    ort = [r for r in records if r["runtime"] == "onnxruntime"]
    assert ort[0]["status"] == "ok" and ort[0]["model"]["reused"] is True

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailable("torch is not installed")

    # without the framework the earlier export still runs in ONNX Runtime
    monkeypatch.setattr(bench_native, "get_backend", unavailable)
    records = bench.bench_backend(source, "torch", providers=["cpu"], batch_sizes=[2],
                                  onnx_path=path, x=x, **FAST)
    status = {r["runtime"]: r["status"] for r in records}
    assert status == {"onnxruntime": "ok", "native": "unavailable"}


def test_list_validation() -> None:
    bench.validate_lists(["torch"], ["cpu", "cuda"], [1, 32])
    for args, message in ((["jax"], ["cpu"], [1]), "unknown backend 'jax'"), \
                         ((["torch"], ["tpu"], [1]), "unknown provider 'tpu'"), \
                         ((["torch"], ["cpu"], [0]), "positive integers"), \
                         ((["torch"], [], [1]), "no provider"):
        with pytest.raises(ValueError, match=message):
            bench.validate_lists(*args)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--backends", "torch,jax", "unknown 'jax'"),
    ("--providers", "cpu,tpu", "unknown 'tpu'"),
    ("--batch-sizes", "1,0", "positive integer"),
    ("--batch-sizes", "1,x", "positive integer"),
    ("--min-seconds", "-1", ">= 0"),
])
def test_cli_validates_its_lists_at_parse_time(option: str, value: str, message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--spec", "mlp2", option, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_prints_the_table_and_training_speed(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    if "torch" not in _installed():
        pytest.skip("torch is not installed")
    from harness.training import TrainConfig, train_and_evaluate

    run = tmp_path / "run"
    train_and_evaluate("mlp2", TrainConfig(backend="torch", epochs=2, limit=256, limit_test=50),
                       out_dir=run)
    capsys.readouterr()
    code = main(["bench", "--from", str(run), "--backends", "torch", "--providers", "cpu,cuda",
                 "--batch-sizes", "1,3", "--warmup", "1", "--min-runs", "3",
                 "--min-seconds", "0", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for text in ("p50 ms", "throughput/s", "speed-up vs native", "onnxruntime", "native",
                 "CPUExecutionProvider", "session_run", "Training speed", "steady epoch s"):
        assert text in captured.out, text
    if not _cuda_usable():
        assert "unavailable" in captured.out and "cuda" in captured.err
    result = read_json(tmp_path / "out" / "mlp2.latency.json")
    assert result["weights"]["torch"]["source"] == "run"


def test_training_speed_keeps_the_first_epoch_apart() -> None:
    history = [EpochRecord(e + 1, 1.0, 0.5, None, None, s)
               for e, s in enumerate([3.0, 1.0, 2.0])]
    metrics = {
        "spec": {"name": "mlp2"}, "backend": "keras", "device": "cpu", "n_train": 1000,
        "batch_size": 100, "environment": {"backend": {"intra_op_threads": 2}},
        "history": [vars(record) for record in history],
        "timing": epoch_timing(history, 1000),
    }
    speed = runs.training_speed(metrics)
    assert speed["first_epoch_seconds"] == 3.0 and speed["steady_epoch_seconds"] == 1.5
    assert speed["samples_per_second"] == pytest.approx(1000 / 1.5)
    assert (speed["backend"], speed["device"], speed["threads"], speed["epochs"]) == (
        "keras", "cpu", 2, 3)
    row = runs.training_rows([speed])[0]
    assert len(row) == len(runs.TRAINING_COLUMNS) and row[-1] == "667"


def test_a_one_epoch_run_shows_no_steady_figure() -> None:
    history = [EpochRecord(1, 1.0, 0.5, None, None, 3.0)]
    metrics = {
        "spec": {"name": "mlp2"}, "backend": "torch", "device": "cpu", "n_train": 1000,
        "batch_size": 100, "environment": {"backend": {"intra_op_threads": None}},
        "history": [vars(record) for record in history],
        "timing": epoch_timing(history, 1000),
    }
    speed = runs.training_speed(metrics)
    assert speed["steady_epoch_seconds"] is None and speed["samples_per_second"] is None
    row = dict(zip(runs.TRAINING_COLUMNS, runs.training_rows([speed])[0], strict=True))
    assert (row["first epoch s"], row["steady epoch s"], row["samples/s"]) == ("3.00", "–", "–")


def test_speedups_pair_native_and_onnxruntime_p50() -> None:
    def rec(runtime: str, mode: str, p50: float, status: str = "ok") -> dict[str, Any]:
        return {"runtime": runtime, "backend": "torch", "provider": "cuda", "batch_size": 8,
                "mode": mode, "status": status,
                "stats": {"p50_ms": p50} if status == "ok" else None}

    rows = bench.speedups([rec("native", "native", 2.0), rec("onnxruntime", "io_binding", 0.5),
                           rec("onnxruntime", "session_run", 1.0, "unavailable")])
    assert rows == [{"backend": "torch", "provider": "cuda", "batch_size": 8,
                     "mode": "io_binding", "native_p50_ms": 2.0, "onnxruntime_p50_ms": 0.5,
                     "speedup": 4.0, "noisy": False}]


def test_benchmark_suite_writes_json_pytest_benchmark_can_compare(tmp_path: Path) -> None:
    """The inference benchmark, one small selection, in a subprocess: the protocol's rows in
    extra_info, the suite's ratio summary printed, the report reading the rows back, and
    `pytest-benchmark compare` reading the file (about 30 s)."""
    if "torch" not in _installed():
        pytest.skip("torch is not installed")
    out = tmp_path / "bench.json"
    environment = {**os.environ, "HARNESS_BENCH_SPECS": "mlp2",
                   "HARNESS_BENCH_BACKENDS": "torch", "HARNESS_BENCH_BATCH_SIZES": "1",
                   "HARNESS_BENCH_PROVIDERS": "cpu", "HARNESS_BENCH_WINDOWS": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_latency.py", "-q", "-p",
         "no:cacheprovider", "-k", "inference_ratios", f"--benchmark-json={out}",
         f"--ratios-md={tmp_path / 'ratios.md'}"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "framework ratios (timing protocol)" in result.stdout
    assert "onnxruntime b1 torch ÷ onnxruntime" in result.stdout
    page = (tmp_path / "ratios.md").read_text()  # dated, naming the machine and the command
    assert "Made 20" in page and "inference_ratios" in page and "| torch ÷ onnxruntime |" in page
    data = json.loads(out.read_text())
    (bench,) = data["benchmarks"]
    assert bench["group"] == "inference-ratios:mlp2:cpu"
    kinds = {(row["kind"], row["a"], row["b"]) for row in bench["extra_info"]["ratios"]}
    assert kinds == {("native", "torch#1", "torch#2"), ("onnxruntime", "torch", "onnxruntime")}
    assert all(row["ci_low"] <= row["ratio"] <= row["ci_high"]
               for row in bench["extra_info"]["ratios"])
    notes: list[str] = []
    frame = load_benchmark_json(out, notes)
    assert sorted(frame["runtime"]) == ["native", "onnxruntime"] and not notes
    # the `pytest-benchmark` console script, run by this interpreter
    compare = subprocess.run(
        [sys.executable, "-c", "import sys; from pytest_benchmark.cli import main; "
         "sys.argv[0] = 'pytest-benchmark'; main()", "compare", str(out), "--group-by=group"],
        capture_output=True, text=True, timeout=60)
    assert compare.returncode == 0, compare.stderr
    assert "mlp2" in compare.stdout


def test_find_run_picks_the_latest_matching_training_run(tmp_path: Path) -> None:
    def run(name: str, spec: str, backend: str, finished: str, kind: str = "train") -> Path:
        folder = tmp_path / "jobs" / name
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(
            {"kind": kind, "status": "ok", "spec": {"name": spec}, "backend": backend,
             "finished_utc": finished}))
        return folder

    run("a", "mlp2", "torch", "2026-01-01T00:00:00Z")
    latest = run("b", "mlp2", "torch", "2026-02-01T00:00:00Z")
    run("c", "mlp2", "keras", "2026-03-01T00:00:00Z")
    run("d", "mlp3", "torch", "2026-03-01T00:00:00Z")
    assert runs.find_run(tmp_path, "mlp2", "torch") == latest
    assert runs.find_run(tmp_path, "cnn3_k3", "torch") is None
