"""The exact `harness run` commands behind a report: the ones that reproduce its tables (from
each finished job's recorded settings) and the ones that run what is missing (from run.json).

A job records every setting of its command under the option's own name (`batch_sizes` is
`--batch-sizes`), so the options are rebuilt field by field, as harness.run.options defines
them: a field no option sets (what an epoch's time means, say) is left out, and so is a value
the option has by default. The plan's own options and the inputs' folder are never written
back as options (NOT_OPTIONS).
"""

from __future__ import annotations

import json
import shlex
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd

from harness.run.options import BY_DEST, written
from harness.run.plan import STUDY_PREFIX

# Options rebuilt apart (specs, backends, seeds) or never written: the inputs' folder is a
# machine's path (HARNESS_DATA_DIR says it).
NOT_OPTIONS = frozenset({"specs", "backends", "seeds", "data_dir"})


def option_tokens(settings: dict[str, Any]) -> list[str]:
    """`--name value` for every setting an option of `harness run` gives another value than
    its default (a switch alone), in name order."""
    tokens: list[str] = []
    for key in sorted(settings):
        option = BY_DEST.get(key)
        if key not in NOT_OPTIONS and option is not None:
            tokens += written(option, settings[key])
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
    """Jobs whose settings give the same options run from one command."""
    return " ".join(option_tokens(config))


def compact_specs(specs: Iterable[str], studies: dict[str, tuple[str, ...]]) -> list[str]:
    """`study:NAME` for every whole study among `specs`, then the other specs."""
    rest = sorted(set(specs))
    whole = [study for study, names in sorted(studies.items()) if names and set(names) <= set(rest)]
    for study in whole:
        rest = [spec for spec in rest if spec not in studies[study]]
    return [f"{STUDY_PREFIX}{study}" for study in whole] + rest


def reproduce_commands(jobs: pd.DataFrame, out: str,
                       studies: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Commands that re-run every job of the run, ok or failed, with its recorded settings:
    one per group of base specs that share settings, sweep point, backends and seeds (a whole
    study of `studies` named as `study:NAME`)."""
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
        backends = tuple(sorted(b for b in entry["backends"] if b))
        groups[(key, overrides, backends, seeds)].append(spec)
    return [run_command(configs[key], compact_specs(specs, studies or {}), backends, seeds, out,
                        json.loads(overrides))
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
