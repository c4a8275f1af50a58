"""Run plans: one YAML file that says everything a `harness run` runs, for studies whose specs
need different seeds (three seeds for one study, one for the rest) and for the exact command
that reproduces a committed report.

    # harness run --plan plan.yaml --out results/mnist-studies
    options:                      # any `harness run` option, by its long name
      backends: keras,torch
      threads: 1
    groups:                       # each: --specs and, optionally, --seeds
      - {specs: "study:mlp_depth_bn_dropout", seeds: "0,1,2"}
      - {specs: "study:cnn_depth_kernel"}

The values go through the same option parser as the command line (same checks, same
messages); an option also given on the command line overrides the plan's.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.spec.errors import SpecError
from harness.spec.loader import load_yaml, read_text

MAX_PLAN_BYTES = 1_000_000
_GROUP_KEYS = ("specs", "seeds")
# Options a plan cannot hold: the plan itself, and where the run goes (a command-line choice).
_NOT_IN_PLAN = ("plan", "out", "specs", "seeds")


@dataclass(frozen=True)
class PlanFile:
    options: list[str]  # command-line tokens: ["--backends", "keras,torch", ...]
    groups: list[dict[str, str]]  # raw texts of --specs / --seeds, checked by the parser


def _text(value: Any, where: str, path: Path) -> str:
    """An option value as the command line would give it: lists become comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and value and all(
            isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value):
        return ",".join(str(item) for item in value)
    if isinstance(value, (str, int, float)):
        return str(value)
    raise UsageError(f"--plan {path}: {where}: {reprlib.repr(value)}: expected a string, a "
                     "number, or a list of them")


def _options(raw: Any, path: Path, flags: dict[str, str]) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise UsageError(f"--plan {path}: options: expected a mapping of option names to values")
    tokens = []
    for raw_name, value in raw.items():
        name = reprlib.repr(raw_name).strip("'")  # a name of 1 MB is shown shortened
        key = str(raw_name).replace("-", "_")
        if key in _NOT_IN_PLAN or key not in flags:
            allowed = ", ".join(sorted(k for k in flags if k not in _NOT_IN_PLAN))
            raise UsageError(f"--plan {path}: options.{name}: not a plan option; expected one "
                             f"of: {allowed}")
        option = "--" + key.replace("_", "-")
        if flags[key] == "switch":  # true adds it, false leaves it out
            if not isinstance(value, bool):
                raise UsageError(f"--plan {path}: options.{name}: {reprlib.repr(value)}: "
                                 "expected true or false")
            tokens += [option] if value else []
        elif flags[key] == "repeatable":  # a list: the option once per item
            items = value if isinstance(value, list) else [value]
            for number, item in enumerate(items):
                tokens += [option, _text(item, f"options.{name}[{number}]", path)]
        else:
            tokens += [option, _text(value, f"options.{name}", path)]
    return tokens


def _groups(raw: Any, path: Path) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise UsageError(f"--plan {path}: groups: expected a non-empty list of "
                         "{specs: ..., seeds: ...}")
    groups = []
    for index, group in enumerate(raw):
        where = f"groups[{index}]"
        if not isinstance(group, dict) or "specs" not in group \
                or set(group) - set(_GROUP_KEYS):
            raise UsageError(f"--plan {path}: {where}: expected a mapping with `specs` and, "
                             "optionally, `seeds`")
        groups.append({key: _text(group[key], f"{where}.{key}", path)
                       for key in _GROUP_KEYS if key in group})
    return groups


def read_plan(path: Path, flags: dict[str, str]) -> PlanFile:
    """Read and check a plan file's shape; `flags` maps each `harness run` option (dest name)
    to its kind: "switch", "repeatable" or "value". Values are checked later, by the option
    parser."""
    try:
        raw = load_yaml(read_text(path, MAX_PLAN_BYTES), path, max_chars=MAX_PLAN_BYTES)
    except SpecError as exc:  # one problem: unreadable, too big or deep, an alias, not YAML
        raise UsageError(f"--plan {path}: {exc.problems[0]}") from None
    if not isinstance(raw, dict) or set(raw) - {"options", "groups"}:
        raise UsageError(f"--plan {path}: expected a mapping with `groups` and, optionally, "
                         "`options`")
    return PlanFile(_options(raw.get("options"), path, flags), _groups(raw.get("groups"), path))
