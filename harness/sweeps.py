"""`--set` overrides of spec fields; comma lists expand into a grid, like a grid search.

    --set layers[*].activation=relu,sigmoid --set train.optimizer.name=adam,sgd

gives 4 points. Paths are dotted field names with list selectors: `[3]` one layer (negative
counts from the end), `[1:3]` a slice, `[*]` every *hidden* layer that has the field (the
output layer is the loss's 10-way softmax, so `[*]` leaves it alone; `[-1]` still reaches it).
Values are read as YAML scalars (`0.01`, `true`, `relu`). Changing `train.optimizer.name`
fills the new optimizer's hyperparameters from OPTIMIZER_DEFAULTS (Keras defaults of the zoo's
era) unless they are set too.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from typing import Any

import yaml

from harness.spec import ModelSpec, SpecError, SpecProblem
from harness.spec.loader import parse_spec

OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adadelta": {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7},
    "rmsprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                "centered": False},
    "adagrad": {"learning_rate": 0.01, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "nadam": {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
}
_SET = re.compile(r"^(?P<path>[A-Za-z_][\w.\[\]*:-]*)=(?P<values>.+)$")
_STEP = re.compile(r"(?P<key>[A-Za-z_]\w*)(?:\[(?P<sel>[^\]]+)\])?$")


@dataclass(frozen=True)
class Override:
    path: str
    values: tuple[Any, ...]


def parse_set(text: str) -> Override:
    match = _SET.match(text.strip())
    if not match:
        raise ValueError(f"--set {text!r}: expected PATH=VALUE[,VALUE...], "
                         "e.g. layers[*].activation=relu,sigmoid")
    values = tuple(_scalar(v.strip()) for v in match["values"].split(","))
    return Override(match["path"], values)


def _scalar(text: str) -> Any:
    """Numbers as numbers (YAML 1.1 would read `1e-3` as a string), else a YAML scalar."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return yaml.safe_load(text)


def grid(overrides: list[Override]) -> list[dict[str, Any]]:
    """Every combination of the overrides' values: [{path: value, ...}, ...]."""
    if not overrides:
        return [{}]
    combos = itertools.product(*(o.values for o in overrides))
    return [dict(zip((o.path for o in overrides), combo, strict=True)) for combo in combos]


def point_label(point: dict[str, Any]) -> str:
    """A folder-safe label: {'layers[*].activation': 'relu', 'train.batch_size': 64}
    -> 'activation-relu+batch_size-64'."""
    parts = []
    for path, value in point.items():
        leaf = path.rsplit(".", 1)[-1]
        parts.append(re.sub(r"[^A-Za-z0-9._]+", "-", f"{leaf}-{value}").strip("-"))
    return "+".join(parts)


def _select(items: list[Any], selector: str, field: str) -> list[Any]:
    if selector == "*":
        hidden = items[:-1] if len(items) > 1 else items
        return [item for item in hidden if isinstance(item, dict) and field in item]
    if ":" in selector:
        start, _, stop = selector.partition(":")
        return items[slice(int(start) if start else None, int(stop) if stop else None)]
    return [items[int(selector)]]


def _assign(node: Any, steps: list[str], value: Any, path: str) -> int:
    """Set `value` at `steps` below `node`; return how many places were set."""
    match = _STEP.match(steps[0])
    if match is None or not isinstance(node, dict):
        raise ValueError(f"--set {path}: cannot follow {steps[0]!r}")
    key, selector = match["key"], match["sel"]
    if selector is None:
        if len(steps) == 1:
            node[key] = value
            return 1
        return _assign(node.setdefault(key, {}), steps[1:], value, path)
    items = node.get(key)
    if not isinstance(items, list) or len(steps) == 1:
        raise ValueError(f"--set {path}: {key!r} is not a list of mappings")
    try:
        targets = _select(items, selector, _STEP.match(steps[1])["key"])
    except (ValueError, IndexError, TypeError):
        raise ValueError(f"--set {path}: bad selector [{selector}] for {len(items)} "
                         f"{key}") from None
    return sum(_assign(target, steps[1:], value, path) for target in targets)


def apply_point(spec: ModelSpec, point: dict[str, Any]) -> ModelSpec:
    """The spec with `point`'s overrides; validated like any spec (SpecError if it breaks)."""
    if not point:
        return spec
    data = copy.deepcopy(spec.model_dump(mode="json", exclude_none=True))
    for path, value in point.items():
        if path == "train.optimizer.name" and value != data["train"]["optimizer"]["name"]:
            if value not in OPTIMIZER_DEFAULTS:
                raise ValueError(f"--set {path}: expected one of {list(OPTIMIZER_DEFAULTS)}, "
                                 f"got {value!r}")
            data["train"]["optimizer"] = {"name": value, **OPTIMIZER_DEFAULTS[value]}
            continue
        if _assign(data, path.split("."), value, path) == 0:
            raise ValueError(f"--set {path}: no layer of {spec.name!r} has that field")
    for path, value in point.items():  # explicit hyperparameters win over filled defaults
        if path.startswith("train.optimizer.") and path != "train.optimizer.name":
            _assign(data, path.split("."), value, path)
    data["name"] = f"{spec.name}--{point_label(point)}"
    try:
        return parse_spec(yaml.safe_dump(data), source=f"{spec.name} with {point}")
    except SpecError as exc:
        raise SpecError(exc.problems + [SpecProblem("", "(after --set overrides)")],
                        exc.source) from None
