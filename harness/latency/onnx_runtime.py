"""ONNX Runtime's latency records for one exported file: a session per provider and batch size,
timed by harness.ort, each record saying which provider ran its nodes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.latency.records import failure_reason, latency_record
from harness.measure.memory import track_memory
from harness.ort.timing import modes


def ort_records(onnx_path: Path, backend_name: str, provider: str, batch_sizes: Sequence[int],
                 x: np.ndarray, threads: int | None, graph_optimization: str,
                 timing: dict[str, Any], model_info: dict[str, Any],
                 strict_providers: bool = False) -> list[dict[str, Any]]:
    """ORT records; each says how many nodes each provider ran (`placement`, None where no
    session ran) and whether a device provider left compute nodes to the CPU (`mixed`)."""
    from harness.ort import measure_session

    records = []
    for batch in batch_sizes:
        common = {"graph_optimization": graph_optimization, "model": model_info}
        try:
            with track_memory() as memory:  # the session's own footprint: peak and increase
                result = measure_session(onnx_path, provider, batch_size=batch, x=x,
                                         threads=threads, graph_optimization=graph_optimization,
                                         strict_providers=strict_providers, **timing)
        except Exception as exc:  # noqa: BLE001 - one broken combination must not stop the rest
            records += [latency_record("onnxruntime", backend_name, provider, mode, batch, threads,
                                status="failed", reason=failure_reason(exc), **common)
                        for mode in modes(provider)]
            continue
        for mode in modes(provider):
            stats = result["latency"].get(mode)
            records.append(latency_record(
                "onnxruntime", backend_name, provider, mode, batch, threads,
                provider_used=result["provider"], status=result["status"],
                reason=result["reason"], stats=stats, placement=result["placement"],
                mixed=result["mixed"], graph_optimization_level=result["graph_optimization_level"],
                intra_op_threads=result["intra_op_threads"],
                inter_op_threads=result["inter_op_threads"], memory=memory.result(), **common))
    return records
