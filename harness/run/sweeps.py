"""`--set` overrides of spec fields; comma lists expand into a grid, like a grid search.

    --set layers[*].activation=relu,sigmoid --set train.optimizer.name=adam,sgd

gives 4 points. Paths are dotted field names with list selectors: `[3]` one layer (negative
counts from the end), `[1:3]` a slice, `[*]` every *hidden* layer that has the field (the
output layer is the loss's 10-way softmax, so `[*]` leaves it alone; `[-1]` still reaches it).
Values are read as YAML scalars (`0.01`, `true`, `relu`). Changing `train.optimizer.name`
fills the new optimizer's hyperparameters from OPTIMIZER_DEFAULTS (Keras defaults of the zoo's
era) unless they are set too. A run plans at most MAX_JOBS jobs, counted before any grid is
expanded.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import reprlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from harness.errors import UsageError
from harness.spec import ModelSpec, SpecError
from harness.spec.loader import dump_yaml, load_yaml, parse_spec

OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adadelta": {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7},
    "rmsprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                "centered": False},
    "adagrad": {"learning_rate": 0.01, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "nadam": {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adamw": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
              "weight_decay": 0.004},
}
_SET = re.compile(r"^(?P<path>[A-Za-z_][\w.\[\]*:-]*)=(?P<values>.+)$")
_STEP = re.compile(r"(?P<key>[A-Za-z_]\w*)(?:\[(?P<sel>\*|-?\d+|-?\d*:-?\d*)\])?$")
MAX_STEPS = 8  # the deepest spec field is 3 dots down (layers[0].kernel_initializer.stddev)
MAX_LABEL = 64  # characters of a point's label in spec names, job ids and folder names
EXAMPLE = "e.g. layers[*].activation=relu,sigmoid or train.optimizer.learning_rate=0.1,0.01"
# Jobs one run may plan: past it a grid is a slip (three --set lists of 40 values are 64,000
# specs, minutes of planning before any output and a run.json of tens of MB), not a study.
MAX_JOBS = 10_000
NPZ_PATH = "input.dataset.npz"  # the --set that --data stands for
# Fields a spec may give as a word (`dataset: mnist`, `validation: test`) or leave out
# (`normalize`): a --set below one of them starts it as this mapping.
_MAPPINGS: dict[str, dict[str, Any]] = {
    "input.dataset": {"npz": None}, "train.validation": {"split": None},
    "input.normalize": {"mean": 0.0, "std": 1.0},
}


def check_job_count(count: int, options: str, what: str = "jobs") -> None:
    """UsageError naming `options` when `count` (of jobs, or of what makes them) passes
    MAX_JOBS; called with a count worked out before anything is expanded."""
    if count > MAX_JOBS:
        raise UsageError(f"{options}: {count:,} {what}, more than the {MAX_JOBS:,} jobs a run "
                         "may plan; give fewer values, or split them over several runs")


class _PathProblem(ValueError):
    """A --set path that does not fit the spec; apply_point adds the option and spec name."""


@dataclass(frozen=True)
class Override:
    path: str
    values: tuple[Any, ...]


def parse_set(text: str) -> Override:
    """`PATH=V1,V2` -> Override; UsageError (naming --set) for text that is not one."""
    match = _SET.match(text.strip())
    if not match:
        raise UsageError(f"--set {text!r}: expected PATH=VALUE[,VALUE...], {EXAMPLE}")
    steps = match["path"].split(".")
    if len(steps) > MAX_STEPS or not all(_STEP.match(step) for step in steps):
        raise UsageError(f"--set {text!r}: {match['path']!r} is not a field path; a path is "
                         f"field names with [index], [start:stop] or [*] on lists, {EXAMPLE}")
    items = match["values"].split(",")
    check_job_count(len(items), f"--set {match['path']}", "values")
    return Override(match["path"], tuple(_scalar(text, item.strip()) for item in items))


def _number(item: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(item)
        except ValueError:
            continue
    return None


def _scalar(text: str, item: str) -> Any:
    """Numbers as numbers (YAML 1.1 would read `1e-3` as a string), else a YAML scalar."""
    if not item:
        raise UsageError(f"--set {text!r}: an empty value; give VALUE[,VALUE...]")
    value = _number(item)
    if value is None:
        try:
            value = load_yaml(item, source=f"--set {text!r}")
        except SpecError as exc:
            raise UsageError(str(exc).replace("\n", "; ")) from None
    if isinstance(value, (dict, list)):
        raise UsageError(f"--set {text!r}: {item!r}: expected one value (a number, a word, "
                         "true, false or null); separate values with commas")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"--set {text!r}: {item!r}: expected a finite number")
    return value


def point_count(overrides: list[Override]) -> int:
    """How many points `grid` gives, without expanding it."""
    return math.prod(len(override.values) for override in overrides)


def grid(overrides: list[Override]) -> list[dict[str, Any]]:
    """Every combination of the overrides' values: [{path: value, ...}, ...] (count them first
    with point_count: there may be millions)."""
    paths = [o.path for o in overrides]
    for path in paths:
        if paths.count(path) > 1:
            raise UsageError(f"--set {path}: given twice; give all its values in one --set, "
                             "separated by commas")
    if not overrides:
        return [{}]
    combos = itertools.product(*(o.values for o in overrides))
    return [dict(zip(paths, combo, strict=True)) for combo in combos]


def point_label(point: dict[str, Any]) -> str:
    """A folder-safe label: {'layers[*].activation': 'relu', 'train.batch_size': 64}
    -> 'activation-relu+batch_size-64' (shortened, with a hash, past MAX_LABEL characters)."""
    parts = []
    for path, value in point.items():
        leaf = path.rsplit(".", 1)[-1]
        if path == NPZ_PATH:
            value = PurePath(str(value)).stem  # the file's name, not its folders
        parts.append(re.sub(r"[^A-Za-z0-9._]+", "-", f"{leaf}-{value}").strip("-"))
    label = "+".join(parts)
    if len(label) <= MAX_LABEL:
        return label
    digest = hashlib.sha256(repr(sorted(point.items(), key=str)).encode()).hexdigest()[:10]
    return f"{label[:MAX_LABEL - 11]}-{digest}"


def _select(items: list[Any], selector: str, field: str, where: str) -> list[tuple[int, Any]]:
    """(index, item) pairs that `[selector]` picks from the list at `where`."""
    indexed = list(enumerate(items))
    if selector == "*":
        hidden = indexed[:-1] if len(items) > 1 else indexed
        return [(i, item) for i, item in hidden if isinstance(item, dict) and field in item]
    if ":" in selector:
        start, _, stop = selector.partition(":")
        return indexed[slice(int(start) if start else None, int(stop) if stop else None)]
    index = int(selector)
    if not -len(items) <= index < len(items):
        raise _PathProblem(f"index {index} is out of range: {where} has {len(items)} entries "
                           f"(0 to {len(items) - 1}, or -{len(items)} to -1)")
    return [indexed[index]]


def _describe(node: dict[str, Any], where: str) -> str:
    return f"{where} ({node['type']})" if isinstance(node.get("type"), str) else where


def _assign(node: Any, steps: list[str], value: Any, where: str = "") -> int:
    """Set `value` at `steps` below `node` (an existing field only); return how many places
    were set."""
    match = _STEP.match(steps[0])
    key, selector = match["key"], match["sel"]
    if isinstance(node, list):
        raise _PathProblem(f"{where} is a list: pick entries with [index], [start:stop] or [*]")
    if not isinstance(node, dict):
        raise _PathProblem(f"{where} is {reprlib.repr(node)}, which has no fields")
    if key not in node:
        owner = _describe(node, where) if where else "the spec"
        raise _PathProblem(f"{owner} has no field {key!r}; its fields: {sorted(node)}")
    here = f"{where}.{key}" if where else key
    if selector is None:
        if len(steps) == 1:
            node[key] = value
            return 1
        return _assign(node[key], steps[1:], value, here)
    items = node[key]
    if not isinstance(items, list) or len(steps) == 1:
        raise _PathProblem(f"[{selector}] needs a list of mappings and a field after it, as "
                           "in layers[0].units")
    targets = _select(items, selector, _STEP.match(steps[1])["key"], here)
    return sum(_assign(item, steps[1:], value, f"{here}[{index}]") for index, item in targets)


def _open_mappings(data: dict[str, Any], point: dict[str, Any]) -> None:
    """Turn the fields `point` sets below into mappings (harness.run.sweeps._MAPPINGS): a new
    .npz path drops the old file's sha256 (unless the point sets it too)."""
    for prefix, start in _MAPPINGS.items():
        if not any(path.startswith(f"{prefix}.") for path in point):
            continue
        section, field = prefix.split(".")
        fresh = NPZ_PATH in point and prefix == "input.dataset" \
            and f"{prefix}.sha256" not in point
        if fresh or not isinstance(data[section].get(field), dict):
            data[section][field] = dict(start)


def apply_point(spec: ModelSpec, point: dict[str, Any]) -> ModelSpec:
    """The spec with `point`'s overrides, validated like any spec. Every problem (a path the
    spec lacks, an index out of range, a value the field cannot take) is one UsageError line
    naming --set."""
    if not point:
        return spec
    data = spec.model_dump(mode="json")  # unset (None) fields kept: every field can be set
    name_path = "train.optimizer.name"
    if name_path in point and point[name_path] != data["train"]["optimizer"]["name"]:
        optimizer = point[name_path]
        if not isinstance(optimizer, str) or optimizer not in OPTIMIZER_DEFAULTS:
            raise UsageError(f"--set {name_path}: expected one of {list(OPTIMIZER_DEFAULTS)}, "
                             f"got {optimizer!r}")
        data["train"]["optimizer"] = {"name": optimizer, **OPTIMIZER_DEFAULTS[optimizer]}
    _open_mappings(data, point)
    for path, value in point.items():  # after the optimizer switch: explicit values win
        try:
            if path != name_path and _assign(data, path.split("."), value) == 0:
                raise _PathProblem("no layer has that field (or the slice selects none)")
        except _PathProblem as exc:
            raise UsageError(f"--set {path}: {spec.name}: {exc}") from None
    data["name"] = f"{spec.name}--{point_label(point)}"
    try:
        return parse_spec(dump_yaml(data), source=spec.name)
    except SpecError as exc:
        given = ", ".join(f"{path}={value}" for path, value in point.items())
        problems = "; ".join(str(problem) for problem in exc.problems)
        raise UsageError(f"--set {given}: {spec.name}: {problems}") from None
