"""`harness retime RUN_DIR`: time every spec of a finished run with the timing protocol
(harness.speed), quietly, into RUN_DIR/speed/.

One record per spec (speed/specs/<spec>.json): its backends' training steps, native inference
and ONNX Runtime, interleaved windows, intervals. Specs that train the identical model
(harness.spec.training_hash) are timed once, the others named as its aliases. The noise specs
(default: one per study) are also timed against themselves (A/A: the noise floor), first, and
timed again at the end into speed/repeat/ (the machine's drift over the pass, and whether
intervals taken apart overlap). Resumable: a spec whose record exists and was quiet is not
timed again; a busy one is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.measure.protocol import Protocol
from harness.measure.speed_load import REPEAT_DIR, SPECS_DIR, speed_dir
from harness.measure.speed_records import SpecSpeed
from harness.records import folders
from harness.records.checks import ok_jobs
from harness.records.io import write_json_atomic
from harness.run.folder import run_folder_lock
from harness.spec import ModelSpec, load_spec, training_hash
from harness.speed.spec_timing import REFERENCE, SpecTiming, time_spec
from harness.speed.worker import WorkerError


@dataclass
class _RunSpec:
    spec: ModelSpec
    study: str
    backends: set[str] = field(default_factory=set)
    threads: int | None = None
    seed: int = 0
    data_dir: str | None = None
    limit: int | None = None


def _run_specs(run_dir: Path) -> dict[str, _RunSpec]:
    """The specs the run trained (finished ok jobs, no sweep point), with their backends."""
    found: dict[str, _RunSpec] = {}
    for _, job in ok_jobs(run_dir):
        config = job.config
        if config.get("overrides"):
            continue
        name = str(config["spec"])
        entry = found.get(name)
        if entry is None:
            entry = found[name] = _RunSpec(load_spec(folders.spec_file(run_dir, name)),
                                           str(config.get("study") or ""),
                                           threads=config.get("threads"),
                                           seed=int(config.get("seed") or 0),
                                           data_dir=config.get("data_dir"),
                                           limit=config.get("limit"))
        entry.backends.add(str(config["backend"]))
        entry.seed = min(entry.seed, int(config.get("seed") or 0))
    return found


def alias_groups(specs: dict[str, ModelSpec]) -> dict[str, list[str]]:
    """Timed spec -> its aliases (the other specs with the same training_hash), by name."""
    groups: dict[str, list[str]] = {}
    for name in sorted(specs):
        groups.setdefault(training_hash(specs[name]), []).append(name)
    return {names[0]: names[1:] for names in groups.values()}


def default_noise_specs(run_specs: dict[str, _RunSpec], timed: Sequence[str]) -> list[str]:
    """One spec per study: its first timed spec by name."""
    first: dict[str, str] = {}
    for name in sorted(timed):
        first.setdefault(run_specs[name].study, name)
    return sorted(first.values())


def _backends(names: set[str]) -> list[str]:
    return sorted(names, key=lambda name: (name == REFERENCE, name))


def _quiet_record(path: Path) -> bool:
    try:
        record = SpecSpeed.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return False
    return not any(c.busy for c in record.comparisons)


@dataclass
class SpeedPass:
    """What `harness retime` times: which specs, which get A/A and a repeat, the protocol."""

    protocol: Protocol = field(default_factory=Protocol)
    specs: Sequence[str] | None = None  # None: every spec of the run
    noise_specs: Sequence[str] | None = None  # None: default_noise_specs
    repeat: bool = True


def _time_into(path: Path, entry: _RunSpec, aliases: list[str], noise: bool,
               protocol: Protocol, log: Callable[[str], None]) -> str | None:
    """Time one spec into `path` unless a quiet record is there; the failure line, if any."""
    if _quiet_record(path):
        log(f"{entry.spec.name}: timed already ({path.parent.name}), quiet")
        return None
    log(f"{entry.spec.name}: {' vs '.join(_backends(entry.backends))}"
        + (", with A/A" if noise else ""))
    work = SpecTiming(entry.spec, _backends(entry.backends), entry.threads, entry.data_dir,
                      entry.seed, noise=noise, aliases=aliases, limit=entry.limit)
    try:
        record = time_spec(work, protocol, log)
    except WorkerError as exc:
        log(f"{entry.spec.name}: failed: {exc}")
        return f"{entry.spec.name}: {exc}"
    write_json_atomic(path, record.model_dump(mode="json"))
    return None


def retime_speed(run_dir: Path, plan: SpeedPass, log: Callable[[str], None] = print
                 ) -> dict[str, Any]:
    """Time the run's specs with the protocol (holding the run folder's lock); a summary."""
    run_dir = Path(run_dir)
    with run_folder_lock(run_dir):
        entries = _run_specs(run_dir)
        groups = alias_groups({name: entry.spec for name, entry in entries.items()})
        timed = [name for name in groups if plan.specs is None or name in plan.specs
                 or any(alias in plan.specs for alias in groups[name])]
        noise = list(plan.noise_specs if plan.noise_specs is not None
                     else default_noise_specs(entries, timed))
        order = [*[n for n in noise if n in timed], *[n for n in timed if n not in noise]]
        out = speed_dir(run_dir)
        failed = [line for name in order if (line := _time_into(
            out / SPECS_DIR / f"{name}.json", entries[name], groups[name], name in noise,
            plan.protocol, log))]
        repeated = [name for name in noise if name in timed] if plan.repeat else []
        failed += [line for name in repeated if (line := _time_into(
            out / REPEAT_DIR / f"{name}.json", entries[name], groups[name], False,
            plan.protocol, log))]
    return {"specs": len(order), "aliases": sum(len(groups[n]) for n in order),
            "noise_specs": noise, "repeated": repeated, "failed": failed, "out": str(out)}
