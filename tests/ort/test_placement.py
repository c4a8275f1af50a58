"""Where ONNX Runtime really ran the nodes: every latency record carries the node placement,
CPU fallback under a CUDA label is caught (session level: unavailable; node level: `mixed`, or
unavailable with --strict-providers), proven with fake CUDA sessions on a machine without one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from harness.latency.records import problems, summary_rows  # noqa: E402
from harness.ort import ProviderUnavailable, create_session  # noqa: E402
from harness.ort.sessions import (  # noqa: E402
    DISABLE_CPU_EP_FALLBACK,
    placement_from_profile,
    profile_placement,
)
from harness.ort.timing import IO_BINDING, SESSION_RUN, measure_session  # noqa: E402

from .fakes import (  # noqa: E402
    CPU_EP,
    CUDA_EP,
    ORT_STRICT_ERROR,
    FakeCuda,
    all_on,
    compute_on_cpu,
    config_entry,
    install_fake_cuda,
    node_event,
    shape_only_on_cpu,
)

FAST = {"warmup": 1, "min_runs": 3, "min_seconds": 0.0}
TinyModel = tuple[Path, np.ndarray, np.ndarray]


def test_real_cpu_session_records_every_node_on_cpu(tiny_model: TinyModel,
                                                   inputs: np.ndarray) -> None:
    path, _, _ = tiny_model
    placement = profile_placement(path, "cpu", inputs[:4], threads=1,
                                  graph_optimization="disable")
    # optimizations off: the file's MatMul, Add and Softmax each ran, all on the CPU
    assert placement.nodes == {CPU_EP: 3}
    assert placement.fallback_compute_nodes == () and not placement.mixed
    record = measure_session(path, "cpu", batch_size=8, x=inputs, threads=1, **FAST)
    assert record["status"] == "ok" and record["mixed"] is False
    assert set(record["placement"]["nodes"]) == {CPU_EP}
    assert record["placement"]["nodes"][CPU_EP] >= 1  # ORT may fuse MatMul+Add
    assert record["placement"]["fallback_compute_nodes"] == []


def test_placement_counts_each_node_once_and_only_float_work_as_compute() -> None:
    events = [*compute_on_cpu(), *compute_on_cpu(),  # two runs of the same five nodes
              {"cat": "Session", "name": "model_run", "args": {}},
              {"cat": "Node", "name": "/Add_fence_before", "args": {"op_name": "Add"}}]
    placement = placement_from_profile(events, "cuda")
    assert placement.nodes == {CPU_EP: 3, CUDA_EP: 2}
    assert placement.fallback_compute_nodes == ("/Add (Add)",)
    assert placement.mixed
    assert placement.as_dict() == {"nodes": {CPU_EP: 3, CUDA_EP: 2},
                                   "fallback_compute_nodes": ["/Add (Add)"]}
    # the CPU provider asked for: nothing fell back
    assert not placement_from_profile(events, "cpu").mixed


def test_shape_nodes_on_cpu_are_not_mixed_but_untyped_nodes_are() -> None:
    assert not placement_from_profile(shape_only_on_cpu(), "cuda").mixed
    untyped = node_event("/Gemm", "Gemm", CPU_EP, types=(), index=7)
    placement = placement_from_profile([*all_on(CUDA_EP), untyped], "cuda")
    assert placement.fallback_compute_nodes == ("/Gemm (Gemm)",)  # cannot tell: counted
    with pytest.raises(ValueError, match="no node events"):
        placement_from_profile([{"cat": "Session", "name": "model_run"}], "cuda")


def test_session_level_fallback_under_cuda_label_is_unavailable(
        tiny_model: TinyModel, inputs: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, _ = tiny_model
    install_fake_cuda(monkeypatch, FakeCuda(providers=[CPU_EP], events=all_on(CPU_EP)))
    with pytest.raises(ProviderUnavailable, match="runs on \\['CPUExecutionProvider'\\]"):
        create_session(path, "cuda")
    record = measure_session(path, "cuda", batch_size=8, x=inputs, **FAST)
    assert record["status"] == "unavailable" and "requested" in record["reason"]
    assert record["provider"] is None and record["latency"] == {}
    assert record["placement"] is None and record["mixed"] is False


def test_cuda_session_with_all_nodes_on_cuda_is_timed_and_not_mixed(
        tiny_model: TinyModel, inputs: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, _ = tiny_model
    fake = FakeCuda(events=shape_only_on_cpu())
    install_fake_cuda(monkeypatch, fake)
    record = measure_session(path, "cuda", batch_size=8, x=inputs, **FAST)
    assert record["status"] == "ok" and record["provider"] == CUDA_EP
    assert record["mixed"] is False
    assert record["placement"]["nodes"] == {CPU_EP: 1, CUDA_EP: 3}
    assert list(record["latency"]) == [IO_BINDING, SESSION_RUN]
    # placement came from its own profiled session; the timed one does not profile
    assert [session.profiled for session in fake.sessions] == [True, False]


def test_node_level_fallback_under_cuda_label_is_marked_mixed(
        tiny_model: TinyModel, inputs: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, _ = tiny_model
    install_fake_cuda(monkeypatch, FakeCuda(events=compute_on_cpu()))
    record = measure_session(path, "cuda", batch_size=8, x=inputs, **FAST)
    assert record["status"] == "ok" and record["mixed"] is True
    assert record["placement"]["fallback_compute_nodes"] == ["/Add (Add)"]
    assert record["latency"][SESSION_RUN]["runs"] >= FAST["min_runs"]


@pytest.mark.parametrize("honours_strict", [True, False],
                         ids=["ort-refuses", "checked-after-profiling"])
def test_strict_providers_refuses_node_level_fallback(
        tiny_model: TinyModel, inputs: np.ndarray, monkeypatch: pytest.MonkeyPatch,
        honours_strict: bool) -> None:
    path, _, _ = tiny_model
    fake = FakeCuda(events=compute_on_cpu(), honours_strict=honours_strict)
    install_fake_cuda(monkeypatch, fake)
    record = measure_session(path, "cuda", batch_size=8, x=inputs, strict_providers=True,
                             **FAST)
    assert record["status"] == "unavailable" and record["latency"] == {}
    assert record["strict_providers"] is True and record["provider"] is None
    if honours_strict:
        assert ORT_STRICT_ERROR in record["reason"] and DISABLE_CPU_EP_FALLBACK in record["reason"]
    else:
        assert record["reason"].startswith("--strict-providers: 3 of 5 nodes ran on CPU")
        assert "/Add (Add)" in record["reason"]


def test_strict_providers_sets_ort_option_for_cuda_only(
        tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, _ = tiny_model
    fake = FakeCuda()
    install_fake_cuda(monkeypatch, fake)
    create_session(path, "cuda", strict_providers=True)
    create_session(path, "cuda")
    entries = [config_entry(s.get_session_options(), DISABLE_CPU_EP_FALLBACK)
               for s in fake.sessions]
    assert entries == ["1", None]
    # ORT rejects the option next to an explicitly requested CPU provider: not set there
    cpu = create_session(path, "cpu", strict_providers=True)
    assert config_entry(cpu.get_session_options(), DISABLE_CPU_EP_FALLBACK) is None


def test_bench_table_and_problems_label_mixed_records(
        tiny_model: TinyModel, inputs: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.latency.onnx_runtime import ort_records

    path, _, _ = tiny_model
    install_fake_cuda(monkeypatch, FakeCuda(events=compute_on_cpu()))
    records = ort_records(path, "torch", "cuda", [4], inputs, None, "all", FAST,
                           {"file": path.name})
    records += ort_records(path, "torch", "cpu", [4], inputs, None, "all", FAST,
                            {"file": path.name})
    assert [(r["provider"], r["mode"], r["mixed"]) for r in records] == [
        ("cuda", IO_BINDING, True), ("cuda", SESSION_RUN, True), ("cpu", SESSION_RUN, False)]
    assert records[2]["placement"]["nodes"].keys() == {CPU_EP}
    result = {"spec": {"name": "tiny"}, "records": records, "speedups": []}
    used = [row[3] for row in summary_rows(result)]
    assert used == [f"cuda ({CUDA_EP}), mixed"] * 2 + [f"cpu ({CPU_EP})"]
    assert problems(result) == [
        "torch onnxruntime on cuda: mixed: compute nodes ran on the CPU: /Add (Add)"]


def test_report_tables_mark_mixed_records() -> None:
    pd = pytest.importorskip("pandas")
    from harness.report.load import LATENCY_COLUMNS, latency_rows
    from harness.report.tables import MIXED, latency_table, speedup_table

    def record(runtime: str, provider: str, mode: str, mixed: bool | None) -> dict:
        stats = {"p50_ms": 1.0, "p90_ms": 1.5, "throughput": 4000.0}
        fields = {"runtime": runtime, "provider": provider, "provider_used": provider,
                  "mode": mode, "batch_size": 4, "status": "ok", "stats": stats}
        return fields if mixed is None else {**fields, "mixed": mixed}  # None: older record

    records = [record("onnxruntime", "cuda", SESSION_RUN, True),
               record("onnxruntime", "cpu", SESSION_RUN, False),
               record("native", "cuda", "native", None)]
    keys = {"job_id": "j", "spec": "tiny", "point": "", "backend": "torch", "seed": 0}
    frame = pd.DataFrame(latency_rows(records, keys, "run"), columns=LATENCY_COLUMNS)
    table = latency_table(frame)
    marks = {(row.runtime, row.provider): row.placement for row in table.itertuples()}
    assert marks == {("onnxruntime", "cuda"): MIXED, ("onnxruntime", "cpu"): "",
                     ("native", "cuda"): ""}
    speed = speedup_table(table)
    assert speed[["provider", "ort_placement"]].values.tolist() == [["cuda", MIXED]]
