"""How the speed figures were taken and on what: the machine as the records describe it
(CPU model, the instruction sets CPU kernels pick by, cores used, RAM, virtual machine or not),
the A/A noise floor and drift the protocol measured, and the latency method, read from the
protocol's records (harness.speed) or, for an older run, from its own settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from harness.measure.intervals import floor_as_percent
from harness.report.speed_records import ORT, floor, machine_facts

if TYPE_CHECKING:
    from harness.report.load import RunData

# (shown name, /proc/cpuinfo flags that have it)
INSTRUCTION_SETS = (("AVX2", ("avx2",)), ("AVX-512", ("avx512f",)),
                    ("AVX-512 VNNI", ("avx512_vnni",)), ("AVX-512 BF16", ("avx512_bf16",)),
                    ("AMX", ("amx_tile", "amx_bf16", "amx_int8")))


def cpu_flags(environment: dict[str, Any]) -> list[str] | None:
    """The CPU flags an environment record holds (`cpu_flags`, at its top level or in its
    `machine` block); None when it recorded none."""
    flags = environment.get("cpu_flags")
    if flags is None:
        flags = (environment.get("machine") or {}).get("cpu_flags")
    return None if flags is None else [str(f).lower() for f in flags]


def instruction_sets_text(environment: dict[str, Any]) -> str:
    flags = cpu_flags(environment)
    if flags is None:
        return "not recorded"
    return ", ".join(f"{name} {'yes' if any(f in flags for f in names) else 'no'}"
                     for name, names in INSTRUCTION_SETS)


def _yes_no(value: Any) -> str:
    return "not known" if value is None else ("yes" if value else "no")


def _cores_text(run: RunData, facts: dict[str, Any]) -> str:
    threads = sorted({r.threads for r in run.speed.specs.values()})
    parts = [f"{', '.join(map(str, threads))} thread(s) per runtime (protocol)" if threads
             else "as in threads"]
    if facts.get("usable_cores") is not None:
        parts.append(f"{facts['usable_cores']} usable of {facts.get('logical_cores', '?')} "
                     "logical cores")
    return "; ".join(parts)


def drift_text(run: RunData) -> str:
    """The repeat pass against the first: each re-timed spec's steady epoch estimate per
    framework, repeat ÷ first, as a range in percent."""
    changes = [later.epoch_estimate[label].estimate / first.epoch_estimate[label].estimate - 1
               for spec, later in run.speed.repeat.items()
               if (first := run.speed.specs.get(spec)) is not None
               for label in sorted(set(later.epoch_estimate) & set(first.epoch_estimate))]
    if not changes:
        return "not measured (no repeat pass in RUN_DIR/speed/repeat)"
    return (f"{min(changes) * 100:+.1f} % to {max(changes) * 100:+.1f} % (repeat ÷ first "
            f"steady epoch estimate, {len(changes)} spec × framework pair(s) timed again later)")


def _overlap(first: Any, later: Any) -> bool:
    return first.ci_low <= later.ci_high and later.ci_low <= first.ci_high


def _minutes_apart(first: Any, later: Any) -> float:
    from datetime import datetime

    start = datetime.fromisoformat(first.finished_utc.replace("Z", "+00:00"))
    end = datetime.fromisoformat(later.started_utc.replace("Z", "+00:00"))
    return (end - start).total_seconds() / 60


def repeat_text(run: RunData) -> str:
    """Whether the repeat pass agrees with the first: of the comparisons timed in both (A/A
    aside), how many ratio intervals overlap, and how far apart the passes were."""
    overlaps, apart = [], []
    for spec, later in run.speed.repeat.items():
        first = run.speed.specs.get(spec)
        if first is None:
            continue
        apart.append(_minutes_apart(first, later))
        earlier = {(c.kind, c.a, c.b, c.batch_size): c.ratio for c in first.comparisons
                   if not c.aa}
        overlaps += [_overlap(earlier[key], c.ratio) for c in later.comparisons
                     if (key := (c.kind, c.a, c.b, c.batch_size)) in earlier]
    if not overlaps:
        return "not measured (no repeat pass in RUN_DIR/speed/repeat)"
    return (f"{sum(overlaps)} of {len(overlaps)} ratio intervals of {len(apart)} spec(s) "
            f"overlap between the first pass and the repeat, {min(apart):.0f}–{max(apart):.0f} "
            "min later")


def machine_speed_rows(run: RunData) -> dict[str, str]:
    """Rows of the overview: the machine the timings ran on, their noise floor and drift."""
    facts = machine_facts(run)
    memory = facts.get("memory_gib")
    rows = {"instruction sets": instruction_sets_text(facts),
            "cores used": _cores_text(run, facts),
            "RAM": "not recorded" if memory is None else f"{memory:g} GiB",
            "virtual machine": _yes_no(facts.get("virtual_machine"))}
    if run.speed.specs:
        rows["CPU"] = f"{facts.get('cpu', '–')} ({facts.get('logical_cores', '?')} logical cores)"
        run_cpu = (run.environment.get("machine") or {}).get("cpu")
        if run_cpu and run_cpu != facts.get("cpu"):
            rows["CPU"] += (f" for the protocol's timings; the run's own jobs ran on {run_cpu}"
                            " (accuracies do not depend on it; its epoch times do)")
        rows["A/A noise floor"] = (
            f"training {floor_as_percent(floor(run.speed, 'training'))}, inference "
            f"{floor_as_percent(floor(run.speed, 'native'))} (the furthest an A/A comparison's "
            "interval reaches from 1)")
    else:
        rows["A/A noise floor"] = "not measured: no protocol speed records (harness retime)"
    rows["drift"] = drift_text(run)
    rows["repeatability"] = repeat_text(run)
    return rows


def _values(values: Iterable[Any]) -> str:
    found = sorted({v for v in values if v is not None}, key=str)
    if not found:
        return "not recorded"
    numbers = all(isinstance(v, (int, float)) for v in found)
    if numbers and len(found) > 1:
        return f"{min(found):g} to {max(found):g}"
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in found)


def _merged_protocol(run: RunData) -> dict[str, Any]:
    """The records' protocol settings; a setting that differs between records lists each."""
    merged: dict[str, list[Any]] = {}
    for record in run.speed.specs.values():
        for key, value in record.protocol.items():
            if value not in merged.setdefault(key, []):
                merged[key].append(value)
    return {key: values[0] if len(values) == 1 else values for key, values in merged.items()}


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


# protocol settings the method names in its own words (harness.measure.protocol.Protocol)
_NAMED = {"windows": "window pairs per comparison", "latency_seconds":
          "minimum latency window (s)", "warmup_calls": "untimed warm-up calls",
          "threads": "threads", "onnxruntime_graph_optimization":
          "ONNX Runtime graph optimisation", "interleaving": "interleaving",
          "interval": "interval"}
_LATENCY_REGIONS = ("native", ORT)


def _protocol_text(protocol: dict[str, Any]) -> str:
    """What the records say of the protocol: the latency settings by name, what is inside the
    timed region, then every other setting as recorded."""
    parts = [f"{name}: {_text(protocol[key])}" for key, name in _NAMED.items()
             if key in protocol]
    region = protocol.get("timed_region")
    if isinstance(region, dict):
        parts += [f"timed region ({kind}): {region[kind]}" for kind in _LATENCY_REGIONS
                  if kind in region]
    elif region is not None:
        parts.append(f"timed region: {_text(region)}")
    rest = {k: v for k, v in protocol.items() if k not in _NAMED and k != "timed_region"}
    if rest:
        parts.append(f"other settings: {_text(rest)}")
    return "; ".join(parts) or "none recorded"


def latency_method(run: RunData) -> str:
    """The Latency section's statement of method."""
    if not run.speed.specs:
        return _run_method(run)
    latency = [c for r in run.speed.specs.values() for c in r.comparisons
               if c.kind in ("native", ORT)]
    if not latency:
        return ("Method: the protocol's records hold no inference comparison; the figures below "
                "are the run's own. " + _run_method(run))
    windows = _values(sum(1 for w in c.windows if w.label == c.a) for c in latency)
    calls = _values(n for c in latency for n in c.units_per_window.values())
    shortest = min(w.seconds for c in latency for w in c.windows)
    warmup = _values(round(s, 3) for c in latency for s in c.warmup_seconds.values())
    return (
        "Method (protocol, RUN_DIR/speed): each comparison times its two configurations in "
        "interleaved windows (pairs of adjacent windows, the order inside a pair alternating) "
        f"of a fixed number of predict calls, after an untimed warm-up ({warmup} s per "
        f"configuration); {windows} windows per configuration, {calls} calls per window "
        f"(shortest window {shortest:.3f} s). Figure: the median of the paired ratios of "
        "adjacent windows with a 95 % bootstrap interval, judged against the A/A noise floor. "
        f"Protocol as recorded: {_protocol_text(_merged_protocol(run))}. The tables below are "
        "the run's own single p50s, kept for reference.")


def _run_method(run: RunData) -> str:
    config = (run.run or {}).get("config") or {}
    threads = config.get("threads")
    return (
        "Method (the run's own timing, harness.measure.timing.measure): per configuration one loop "
        "timing each predict call on one batch already in memory (session or predictor built "
        f"outside the timed region), after {config.get('latency_warmup', '?')} untimed warm-up "
        f"calls, until at least {config.get('latency_min_runs', '?')} calls and "
        f"{config.get('latency_min_seconds', '?')} s of timed calls; figure = the p50 of those "
        f"calls; threads: {'every core' if threads is None else threads} intra-op, 1 inter-op; "
        "ONNX Runtime graph optimisation: the harness default (all) unless a variant says "
        "otherwise. One loop per job, not repeated nor interleaved: no interval and no "
        "noise floor (`harness retime RUN_DIR` times them with the protocol).")
