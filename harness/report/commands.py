"""The exact `harness run` commands behind a report: the ones that reproduce its tables (from
each finished job's recorded settings) and the ones that run what is missing (from run.json).

A job records every setting of its command under the option's own name (`batch_sizes` is
`--batch-sizes`), so the options are rebuilt field by field; fields that name the job rather
than set it, and the two settings without an option, are left out (NOT_OPTIONS).
"""

from __future__ import annotations

import json
import shlex
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd

# Fields of a job (or of run.json's config) that are no `harness run` option of their own:
# identity and bookkeeping, the inputs' folder (a machine's path: HARNESS_DATA_DIR says it), and
# latency_warmup (no option; always its default). specs/backends/seeds/overrides are rebuilt.
NOT_OPTIONS = frozenset({
    "job_id", "spec", "base_spec", "spec_hash", "config_hash", "study", "backend", "seed",
    "overrides", "data_dir", "latency_warmup", "specs", "backends", "seeds", "groups", "sets",
})


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def option_tokens(settings: dict[str, Any]) -> list[str]:
    """`--name value` for every setting that has a value (a true switch alone, in name order)."""
    tokens: list[str] = []
    for key in sorted(settings):
        value = settings[key]
        if key in NOT_OPTIONS or value is None or value is False or value == []:
            continue
        option = "--" + key.replace("_", "-")
        tokens += [option] if value is True else [option, _value(value)]
    return tokens


def run_command(settings: dict[str, Any], specs: Iterable[str], backends: Iterable[str],
                seeds: Iterable[int] | None, out: str,
                overrides: dict[str, Any] | None = None) -> str:
    """One `harness run` command line (seeds None: each spec's own train.seed)."""
    tokens = ["harness", "run", "--specs", ",".join(specs), "--backends", ",".join(backends)]
    if seeds:
        tokens += ["--seeds", ",".join(str(int(seed)) for seed in seeds)]
    for key, value in sorted((overrides or {}).items()):
        tokens += ["--set", f"{key}={json.dumps(value) if isinstance(value, bool) else value}"]
    tokens += [*option_tokens(settings), "--out", out]
    return shlex.join(tokens)


def _settings_key(config: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in NOT_OPTIONS}, sort_keys=True)


def reproduce_commands(jobs: pd.DataFrame, out: str) -> list[str]:
    """Commands that re-run every job of the run, ok or failed, with its recorded settings:
    one per group of base specs that share settings, sweep point, backends and seeds."""
    per_spec: dict[tuple[str, str, str], dict[str, set]] = defaultdict(
        lambda: {"backends": set(), "seeds": set()})
    configs: dict[str, dict[str, Any]] = {}
    for text, spec in zip(jobs["config"].fillna("{}"), jobs["spec"], strict=True):
        config = json.loads(text)
        if not config:
            continue
        key = _settings_key(config)
        configs[key] = config
        overrides = json.dumps(config.get("overrides") or {}, sort_keys=True)
        entry = per_spec[(key, overrides, spec)]
        entry["backends"].add(config.get("backend"))
        entry["seeds"].add(config.get("seed"))
    groups: dict[tuple, list[str]] = defaultdict(list)
    for (key, overrides, spec), entry in per_spec.items():
        seeds = tuple(sorted(s for s in entry["seeds"] if s is not None))
        groups[(key, overrides, tuple(sorted(entry["backends"])), seeds)].append(spec)
    return [run_command(configs[key], sorted(specs), backends, seeds, out, json.loads(overrides))
            for (key, overrides, backends, seeds), specs in sorted(groups.items())]


def report_command(out: str, benchmark_jsons: Iterable[str] = ()) -> str:
    tokens = ["harness", "report", out]
    for path in benchmark_jsons:
        tokens += ["--benchmark-json", str(path)]
    return shlex.join(tokens)


def planned_runs(run: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """(base spec, backend) -> {"settings", "seeds"} of the jobs run.json plans (sweep points
    left out: a "not run" row is a spec as written)."""
    planned: dict[tuple[str, str], dict[str, Any]] = {}
    for job in (run or {}).get("jobs") or []:
        if not isinstance(job, dict) or job.get("overrides"):
            continue
        key = (job.get("base_spec") or job.get("spec"), job.get("backend"))
        entry = planned.setdefault(key, {"settings": job, "seeds": []})
        if job.get("seed") is not None and job["seed"] not in entry["seeds"]:
            entry["seeds"].append(job["seed"])
    return planned


def missing_job_settings(run: dict[str, Any] | None, spec: str, backend: str
                         ) -> tuple[dict[str, Any], list[int] | None] | None:
    """The settings and seeds that run.json gives a job of (spec, backend): its planned jobs',
    else the run's own options (seeds: the command's, when it has one list of them)."""
    planned = planned_runs(run).get((spec, backend))
    if planned:
        return planned["settings"], planned["seeds"]
    config = (run or {}).get("config")
    if not isinstance(config, dict):
        return None
    return config, None if config.get("groups") else config.get("seeds")
