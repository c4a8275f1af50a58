"""The benchmarks' ratios, as rows: each comparison of a timing-protocol record
(harness.speed) with its 95 % interval and its verdict against the A/A noise floor of the same
kind. The rows go to the benchmark's `extra_info` (so `--benchmark-json` holds them), are
printed under the test, and are gathered for the suite's terminal summary (conftest.py), since
pytest-benchmark's own table times whole tests, which says nothing about the frameworks.
"""

from __future__ import annotations

from typing import Any

# (title, rows) of every benchmark that timed ratios this session, in run order
SUMMARY: list[tuple[str, list[dict[str, Any]]]] = []


def noise_floors(record: Any) -> dict[str, float | None]:
    """The A/A floor of each comparison kind: training from the training A/A, native and ONNX
    Runtime calls from the native A/A (both time predictor calls of one configuration)."""
    from harness.speed.intervals import noise_floor

    def floor(kind: str) -> float | None:
        return noise_floor([c for c in record.comparisons if c.aa and c.kind == kind])

    native = floor("native")
    return {"training": floor("training"), "native": native, "onnxruntime": native}


def _worded(comparison: Any, judged: str) -> str:
    """The verdict of a time ratio a ÷ b in words naming who is faster: native ÷ ONNX Runtime
    "slower" means ONNX Runtime is faster."""
    if comparison.aa:
        return "A/A (noise floor)"
    if judged == "within noise":
        return judged
    if comparison.kind == "onnxruntime":
        return f"ONNX Runtime {'faster' if judged == 'slower' else 'slower'}"
    return f"{comparison.a} {judged}"


def comparison_rows(record: Any) -> list[dict[str, Any]]:
    """One row per comparison of `record` (a harness.speed.records.SpecSpeed)."""
    from harness.speed.intervals import floor_as_percent, verdict

    floors = noise_floors(record)
    rows = []
    for c in record.comparisons:
        floor = floors.get(c.kind)
        rows.append({
            "spec": record.spec, "kind": c.kind, "a": c.a, "b": c.b,
            "batch_size": None if c.kind == "training" else c.batch_size,
            "ratio": c.ratio.estimate, "ci_low": c.ratio.ci_low, "ci_high": c.ratio.ci_high,
            "n": c.ratio.n, "verdict": _worded(c, verdict(c.ratio, floor)),
            "noise_floor": floor_as_percent(floor),
            "a_ms": c.a_seconds_per_unit.estimate * 1e3,
            "b_ms": c.b_seconds_per_unit.estimate * 1e3, "unit": c.unit, "busy": c.busy})
    return rows


def row_line(row: dict[str, Any]) -> str:
    batch = "" if row["batch_size"] is None else f" b{row['batch_size']}"
    what = f"{row['kind']}{batch} {row['a']} ÷ {row['b']}"
    return (f"{row['spec']:<10} {what:<38} {row['ratio']:6.3f} [{row['ci_low']:.3f}, "
            f"{row['ci_high']:.3f}]  {row['verdict']:<20} ({row['a_ms']:.3g} vs "
            f"{row['b_ms']:.3g} ms per {row['unit']}; floor {row['noise_floor'] or 'n/a'})"
            + (" busy" if row["busy"] else ""))


def record_rows(benchmark: Any, title: str, record: Any) -> list[dict[str, Any]]:
    """The record's rows into `benchmark.extra_info["ratios"]` and the terminal summary."""
    rows = comparison_rows(record)
    benchmark.extra_info["ratios"] = rows
    benchmark.extra_info["backends"] = record.backends
    benchmark.extra_info["problems"] = record.problems
    SUMMARY.append((title, rows))
    return rows


def summary_lines() -> list[str]:
    lines = ["time ratio a ÷ b (above 1: a is slower), 95 % bootstrap interval over "
             "interleaved windows; a verdict only beyond the A/A noise floor"]
    for title, rows in SUMMARY:
        lines.append(title)
        lines.extend("  " + row_line(row) for row in rows)
    return lines
