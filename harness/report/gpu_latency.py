"""The GPU check's inference tables: ONNX Runtime's CUDA provider (IO binding, and session.run
with its host copies) against PyTorch eager on CUDA, per spec and batch size, each median with
its 95 % interval (harness.measure.timing: order statistics over the timed calls), and where
ONNX Runtime ran every node of each file (placement.json)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.measure.speed_records import Estimate
from harness.report.blocks import Section, Table
from harness.report.gpu import NO_GPU, GpuCheck

MISSING = "–"
RATIO_METHOD = ("ratio of the two medians; bounds: the ratio of their 95 % intervals' ends "
                "(separate timing loops, not interleaved: an estimate, no verdict)")
SIDES = {  # column -> (runtime, provider, mode)
    "pytorch_cuda": ("native", "cuda", "native"),
    "ort_cuda_io_binding": ("onnxruntime", "cuda", "io_binding"),
    "ort_cuda_session_run": ("onnxruntime", "cuda", "session_run"),
    "pytorch_cpu": ("native", "cpu", "native"),
    "ort_cpu": ("onnxruntime", "cpu", "session_run"),
}


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """What the page shows of `frame`: every cell as text, a missing value as MISSING."""
    def cell(value: Any) -> str:
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return MISSING if missing else str(value)

    return frame.astype(object).map(cell)


def median_estimate(record: dict[str, Any]) -> Estimate | None:
    """A timed record's p50 with its interval (the p50 itself where too few calls gave none)."""
    stats = record.get("stats") or {}
    if record.get("status") != "ok" or stats.get("p50_ms") is None:
        return None
    p50 = float(stats["p50_ms"])
    low, high = stats.get("p50_ci_low_ms"), stats.get("p50_ci_high_ms")
    return Estimate(estimate=p50, ci_low=p50 if low is None else float(low),
                    ci_high=p50 if high is None else float(high), n=int(stats.get("runs", 0)),
                    method="median; 95 % order-statistics interval over the timed calls")


def ratio_estimate(a: Estimate, b: Estimate) -> Estimate:
    """a's time over b's, with bounds from both intervals (conservative: no pairing)."""
    return Estimate(estimate=a.estimate / b.estimate, ci_low=a.ci_low / b.ci_high,
                    ci_high=a.ci_high / b.ci_low, n=min(a.n, b.n), method=RATIO_METHOD)


def interval_text(estimate: Estimate | None, unit: str = "") -> str:
    if estimate is None:
        return MISSING
    digits = 3 if estimate.estimate < 10 else 1
    return (f"{estimate.estimate:.{digits}f}{unit} [{estimate.ci_low:.{digits}f}–"
            f"{estimate.ci_high:.{digits}f}]")


def _find(records: list[dict[str, Any]], batch: int, side: tuple[str, str, str]
          ) -> dict[str, Any] | None:
    runtime, provider, mode = side
    for record in records:
        if (record.get("backend") == "torch" and record.get("runtime") == runtime
                and record.get("provider") == provider and record.get("mode") == mode
                and record.get("batch_size") == batch):
            return record
    return None


def _missing_text(record: dict[str, Any] | None, on_gpu: bool) -> str:
    """Why a CUDA figure is not there: never a number under a CUDA label that was not one."""
    if not on_gpu:
        return NO_GPU
    if record is None:
        return "not measured"
    text = f"{record.get('status')}: {record.get('reason') or ''}".strip()
    return text[:120]


def latency_rows(check: GpuCheck) -> list[dict[str, Any]]:
    rows = []
    for result in check.bench:
        spec = (result.get("spec") or {}).get("name", "?")
        records = result["records"]
        for batch in sorted({r.get("batch_size") for r in records if r.get("batch_size")}):
            found = {name: _find(records, batch, side) for name, side in SIDES.items()}
            est = {name: median_estimate(r) if r else None for name, r in found.items()}
            row: dict[str, Any] = {"spec": spec, "batch_size": batch}
            for name, estimate in est.items():
                cuda = SIDES[name][1] == "cuda"
                row[f"{name}_ms"] = (interval_text(estimate) if estimate is not None else
                                     _missing_text(found[name], check.on_gpu) if cuda else
                                     MISSING)
                row[f"{name}_p50"] = estimate.estimate if estimate else math.nan
            for mode in ("io_binding", "session_run"):
                ort, torch = est[f"ort_cuda_{mode}"], est["pytorch_cuda"]
                ratio = ratio_estimate(ort, torch) if ort and torch else None
                row[f"ratio_{mode}"] = (interval_text(ratio, "x") if ratio else
                                        NO_GPU if not check.on_gpu else MISSING)
                record = found[f"ort_cuda_{mode}"] or {}
                row[f"mixed_{mode}"] = bool(record.get("mixed"))
            rows.append(row)
    return rows


def latency_section(check: GpuCheck) -> Section:
    rows = latency_rows(check)
    shown_columns = ["spec", "batch_size", "pytorch_cuda_ms", "ort_cuda_io_binding_ms",
                     "ratio_io_binding", "ort_cuda_session_run_ms", "ratio_session_run",
                     "pytorch_cpu_ms", "ort_cpu_ms"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=shown_columns)
    shown = as_text(frame[shown_columns])
    for mode in ("io_binding", "session_run"):
        mixed = frame.get(f"mixed_{mode}", pd.Series(False, index=frame.index)).eq(True)
        shown.loc[mixed, f"ratio_{mode}"] += " (mixed: compute nodes on the CPU)"
    intro = ("Inference of PyTorch's export of each spec (harness bench, initial weights): "
             "milliseconds per call, median [95 % interval], PyTorch eager on CUDA "
             "(synchronised) and ONNX Runtime's CUDA provider with IO binding (input and output "
             "on the GPU) and with session.run (host copies included); ratio = ONNX Runtime ÷ "
             "PyTorch, below 1: ONNX Runtime faster. " + RATIO_METHOD + ". CPU figures beside "
             "them for scale." + ("" if check.on_gpu else
                                  f" This run was on the CPU: CUDA columns are '{NO_GPU}'."))
    if not check.bench:
        intro += " No bench record: see the bench steps' logs."
    return Section("Inference on CUDA: ONNX Runtime vs PyTorch", "gpu-latency", intro,
                   [Table("gpu_latency", frame, shown)])


def placement_frames(check: GpuCheck) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per file x provider: status and nodes per provider; one row per node)."""
    summary, nodes = [], []
    for entry in check.placement:
        ran = entry.get("nodes") or []
        counts: dict[str, int] = {}
        for node in ran:
            counts[node.get("provider", "?")] = counts.get(node.get("provider", "?"), 0) + 1
        status = entry.get("status", "?")
        reason = entry.get("reason") or ""
        if status != "ok" and entry.get("provider") != "cpu" and not check.on_gpu:
            reason = f"{NO_GPU} ({reason[:200]})"
        summary.append({"file": entry.get("file"), "provider": entry.get("provider"),
                        "status": status, "nodes": len(ran),
                        "ran_on": ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())),
                        "cpu_fallback_compute_nodes": sum(bool(n.get("fallback")) for n in ran),
                        "reason": reason})
        nodes += [{"file": entry.get("file"), "provider": entry.get("provider"),
                   "node": n.get("node"), "op": n.get("op"), "ran_on": n.get("provider"),
                   "compute": n.get("compute"), "cpu_fallback": n.get("fallback")}
                  for n in ran]
    return pd.DataFrame(summary), pd.DataFrame(nodes)


def placement_section(check: GpuCheck) -> Section:
    summary, nodes = placement_frames(check)
    intro = ("Where ONNX Runtime ran every node of each bench file, read from its profile of "
             "one run per provider (placement.json). A compute node on the CPU provider under "
             "CUDA is a fallback (cpu_fallback); integer shape nodes and host copies are not "
             "compute.")
    if not check.placement:
        intro += " No placement record: see the placement step's log."
    elif not check.on_gpu:
        intro += f" This run was on the CPU: CUDA placement is '{NO_GPU}'."
    shown = [Table("gpu_placement", summary, as_text(summary)),
             Table("gpu_placement_nodes", nodes, as_text(nodes),
                   "every node, per file and provider")]
    return Section("ONNX node placement", "gpu-placement", intro, list(shown))
