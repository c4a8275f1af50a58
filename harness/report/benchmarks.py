"""pytest-benchmark JSON (`pytest benchmarks/ --benchmark-json FILE`) as latency rows.

Two kinds of benchmark give rows. One timed per configuration by pytest-benchmark: seconds, no
p90/p99; its median becomes p50_ms, and the rest of the row is read from `extra_info` (spec,
backend, runtime, provider, mode, batch_size, and machine_load: whether the machine was busy).
One timed with the timing protocol (benchmarks/test_latency.py): `extra_info["ratios"]`, whose
native and ONNX Runtime comparisons give each side's median milliseconds per call over its
windows (`runs`: the windows); its A/A copies are left out. Any other benchmark (training
ratios, the overhead suites) is not a latency benchmark of a spec and is skipped with a note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.measure.machine_load import is_noisy
from harness.report.load import LATENCY_COLUMNS

SOURCE = "pytest-benchmark"
REQUIRED_EXTRA = ("spec", "backend", "runtime")
# a protocol comparison's kind -> the runtime of its side b (side a is always native)
_PROTOCOL_RUNTIMES = {"native": "native", "onnxruntime": "onnxruntime"}
_MS_PER_S = 1e3


def _row(bench: dict[str, Any], path: Path) -> dict[str, Any]:
    extra, stats = bench.get("extra_info") or {}, bench.get("stats") or {}
    load = extra.get("machine_load") or {}
    batch = extra.get("batch_size")
    mean_s = stats.get("mean")

    def ms(key: str) -> float | None:
        value = stats.get(key)
        return None if value is None else value * _MS_PER_S

    row = {column: None for column in LATENCY_COLUMNS}
    row.update({key: extra.get(key) for key in ("spec", "backend", "runtime", "provider",
                                                "provider_used", "mode", "threads", "seed")})
    row.update({
        "source": SOURCE, "job_id": f"{path.name}:{bench.get('name')}",
        "point": extra.get("point", ""), "batch_size": batch, "status": "ok",
        "mode": extra.get("mode") or ("native" if extra.get("runtime") == "native" else None),
        "p50_ms": ms("median"), "mean_ms": ms("mean"), "std_ms": ms("stddev"),
        "min_ms": ms("min"), "max_ms": ms("max"), "runs": stats.get("rounds"),
        "noisy": is_noisy(load), "others_cores": load.get("others_cores"),
        # samples/s when the batch size is known, else calls/s as pytest-benchmark counts them
        "throughput": (batch / mean_s if batch and mean_s else stats.get("ops")),
    })
    return row


def _protocol_rows(bench: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """Each side of the protocol's inference comparisons, once per (backend, runtime, batch)."""
    extra = bench.get("extra_info") or {}
    device = extra.get("device") or "cpu"
    sides: dict[tuple[str, str, int], dict[str, Any]] = {}
    for ratio in extra.get("ratios") or []:
        if ratio.get("kind") not in _PROTOCOL_RUNTIMES or "#" in str(ratio.get("a")):
            continue
        b_runtime = _PROTOCOL_RUNTIMES[ratio["kind"]]
        b_backend = ratio["a"] if b_runtime == "onnxruntime" else ratio["b"]
        for backend, runtime, ms in ((ratio["a"], "native", ratio["a_ms"]),
                                     (b_backend, b_runtime, ratio["b_ms"])):
            row = {column: None for column in LATENCY_COLUMNS}
            row.update({
                "source": SOURCE, "job_id": f"{path.name}:{bench.get('name')}",
                "spec": ratio["spec"], "point": "", "backend": backend, "runtime": runtime,
                "provider": device, "mode": "native" if runtime == "native" else "session_run",
                "batch_size": ratio["batch_size"], "status": "ok",
                "threads": extra.get("threads"), "p50_ms": ms, "runs": ratio.get("n"),
                "throughput": ratio["batch_size"] / ms * _MS_PER_S if ms else None,
                "noisy": bool(ratio.get("busy"))})
            sides.setdefault((backend, runtime, ratio["batch_size"]), row)
    return list(sides.values())


def load_benchmark_json(path: Path | str, notes: list[str]) -> pd.DataFrame:
    """The latency benchmarks of one file, in LATENCY_COLUMNS; skipped ones go to `notes`."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"{path}: not a readable pytest-benchmark JSON file ({exc})")
        return pd.DataFrame(columns=LATENCY_COLUMNS)
    rows, skipped = [], []
    for bench in payload.get("benchmarks") or []:
        extra = bench.get("extra_info") or {}
        protocol = _protocol_rows(bench, path)
        if protocol:
            rows.extend(protocol)
        elif all(extra.get(key) for key in REQUIRED_EXTRA) and bench.get("stats"):
            rows.append(_row(bench, path))
        else:
            skipped.append(str(bench.get("name")))
    if skipped:
        notes.append(f"{path.name}: skipped {len(skipped)} benchmark(s) that are not latency "
                     "benchmarks of a spec (no inference ratios, nor "
                     f"{'/'.join(REQUIRED_EXTRA)} in extra_info): "
                     + ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    frame = pd.DataFrame(rows, columns=LATENCY_COLUMNS)
    for column in ("batch_size", "threads", "seed", "p50_ms", "mean_ms", "std_ms", "min_ms",
                   "max_ms", "runs", "throughput", "p90_ms", "p99_ms", "others_cores"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
