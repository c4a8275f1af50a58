"""The latency record of `harness bench` and matrix jobs: its fields, how a failure reads in it,
and the table rows and problem lines printed from records."""

from __future__ import annotations

from typing import Any

from harness.measure.machine_load import is_noisy, noisy_note

BUSY_MARK = " (busy)"  # beside figures timed while other processes loaded the CPU


def latency_record(runtime: str, backend: str, provider: str, mode: str, batch_size: int,
            threads: int | None, **fields: Any) -> dict[str, Any]:
    """One latency record; the fields every record has, in a fixed order."""
    record = {"runtime": runtime, "backend": backend, "provider": provider,
              "provider_used": None, "mode": mode, "batch_size": batch_size, "status": "ok",
              "reason": None, "threads": threads, "graph_optimization_level": None,
              "stats": None, "placement": None, "mixed": False}
    record.update(fields)
    return record


def failure_reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def noisy_record(record: dict[str, Any]) -> bool:
    """Whether a latency record's timings were taken on a busy machine."""
    return is_noisy((record.get("stats") or {}).get("machine_load"))


LATENCY_COLUMNS = ("spec", "backend", "runtime", "provider (used)", "mode", "batch", "p50 ms",
                   "p90 ms", "throughput/s", "speed-up vs native")


def summary_rows(result: dict[str, Any]) -> list[list[str]]:
    """Table cells: spec, backend, runtime, provider (used), mode, batch, p50 ms, p90 ms,
    throughput/s, speed-up vs native; unavailable/failed rows say so in the p50 column, and
    figures timed on a busy machine are marked BUSY_MARK."""
    spec = result["spec"]["name"]
    speedup = {(s["backend"], s["provider"], s["batch_size"], s["mode"]): s
               for s in result["speedups"]}
    rows = []
    for r in result["records"]:
        used = f"{r['provider']} ({r['provider_used']})" if r["provider_used"] else r["provider"]
        used += ", mixed" if r.get("mixed") else ""  # compute nodes also ran on the CPU
        head = [spec, r["backend"], r["runtime"], used, r["mode"], str(r["batch_size"])]
        if r["status"] != "ok":
            rows.append([*head, r["status"], "", "", ""])
            continue
        stats = r["stats"]
        busy = BUSY_MARK if noisy_record(r) else ""
        pair = speedup.get((r["backend"], r["provider"], r["batch_size"], r["mode"]))
        ratio = "" if pair is None else (
            f"{pair['speedup']:.2f}x" + (BUSY_MARK if pair.get("noisy") else ""))
        rows.append([*head, f"{stats['p50_ms']:.3f}{busy}", f"{stats['p90_ms']:.3f}{busy}",
                     f"{stats['throughput']:,.0f}{busy}", ratio])
    return rows


def problems(result: dict[str, Any]) -> list[str]:
    """One line per distinct reason a record did not run (unavailable or failed), and one
    saying how many records were timed on a busy machine, if any."""
    lines: dict[str, None] = {}
    for r in result["records"]:
        if r["status"] != "ok":
            lines[f"{r['backend']} {r['runtime']} on {r['provider']}: {r['status']}: "
                  f"{r['reason']}"] = None
        elif r.get("mixed"):
            lines[f"{r['backend']} {r['runtime']} on {r['provider']}: mixed: compute nodes ran "
                  f"on the CPU: {', '.join(r['placement']['fallback_compute_nodes'])}"] = None
    busy = sum(1 for r in result["records"] if r["status"] == "ok" and noisy_record(r))
    if busy:
        lines[f"{busy} measurement(s) marked{BUSY_MARK}: {noisy_note()}"] = None
    return list(lines)
