"""The variant table `harness bench` prints: every runtime x variant x provider x mode x batch
with its latency, speed-up over the eager framework, accuracy and the gate, peak memory and
file size."""

from __future__ import annotations

from typing import Any

from harness.latency.variants.catalog import EAGER, FAILS_ACCURACY

# runtime: eager and compiled are the framework's, every other variant ONNX Runtime's
VARIANT_COLUMNS = ("backend", "variant", "provider", "mode", "batch", "p50 ms", "vs eager",
                   "accuracy", "Δ acc", "agree", "peak MB (+own)", "file KB", "gate")


def all_records(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The bench's own records and the variants', the order they ran in."""
    return [*result["records"], *result.get("variant_records", [])]


def _entries(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(entry["backend"], entry["variant"]): entry for entry in result.get("variants", [])}


def _eager_p50(records: list[dict[str, Any]]) -> dict[tuple[str, str, int], float]:
    return {(r["backend"], r["provider"], r["batch_size"]): r["stats"]["p50_ms"]
            for r in records if r["runtime"] == "native" and r.get("variant") == EAGER
            and r["status"] == "ok"}


def gate_label(record: dict[str, Any]) -> str:
    """FAILS_ACCURACY, "ok", or "" where the accuracy was not measured."""
    if record.get("fails_accuracy"):
        return FAILS_ACCURACY
    return "ok" if record.get("accuracy") is not None else ""


def _accuracy_cells(entry: dict[str, Any], provider: str) -> list[str]:
    scores = entry["accuracy"].get(provider) or {}
    if scores.get("accuracy") is None:
        return ["", "", ""]
    delta = scores["accuracy"] - entry["reference_accuracy"] \
        if entry.get("reference_accuracy") is not None else None
    agreement = scores.get("argmax_agreement")
    return [f"{scores['accuracy']:.4f}", "" if delta is None else f"{delta:+.4f}",
            "" if agreement is None else f"{agreement:.4f}"]


def _memory_cell(record: dict[str, Any]) -> str:
    memory = record.get("memory")
    if not memory:
        return ""
    return f"{memory['peak_rss_mb']:,.0f} (+{memory['increase_mb']:,.0f})"


def variant_rows(result: dict[str, Any]) -> list[list[str]]:
    """Cells in VARIANT_COLUMNS order; a record that did not run says so in its p50 cell."""
    records = [r for r in all_records(result) if r.get("variant")]
    eager, entries = _eager_p50(records), _entries(result)
    rows = []
    for r in records:
        entry = entries[(r["backend"], r["variant"])]
        size = (entry.get("onnx") or {}).get("bytes")
        head = [r["backend"], r["variant"], r["provider"], r["mode"], str(r["batch_size"])]
        if r["status"] != "ok":
            timing = [r["status"], ""]
        else:
            p50 = r["stats"]["p50_ms"]
            base = eager.get((r["backend"], r["provider"], r["batch_size"]))
            timing = [f"{p50:.3f}", f"{base / p50:.2f}x" if base and p50 > 0 else ""]
        rows.append([*head, *timing, *_accuracy_cells(entry, r["provider"]), _memory_cell(r),
                     "" if size is None else f"{size / 1024:,.1f}", gate_label(r)])
    return rows


def variant_problems(result: dict[str, Any]) -> list[str]:
    """One line per distinct reason a variant did not run or was not scored."""
    lines: dict[str, None] = {}
    for entry in result.get("variants", []):
        where = f"{entry['backend']} {entry['variant']}"
        if entry["status"] != "ok":
            lines[f"{where}: {entry['status']}: {entry['reason']}"] = None
            continue
        for provider, scores in entry["accuracy"].items():
            if scores["status"] != "ok":
                lines[f"{where} on {provider}: {scores['status']}: {scores['reason']}"] = None
    return list(lines)
