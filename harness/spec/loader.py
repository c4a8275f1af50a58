"""Load specs from YAML (a zoo name or a user's file), validate them once, and list the zoo.

Every problem becomes a `SpecError` whose lines read `file: layers[3].type: expected ..., got ...`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.spec.errors import SpecError, SpecProblem
from harness.spec.schema import ModelSpec
from harness.spec.shapes import infer

MODELS_DIR_ENV = "HARNESS_MODELS_DIR"
SPEC_SUFFIXES = (".yaml", ".yml")


def zoo_dir() -> Path:
    """The model zoo folder: $HARNESS_MODELS_DIR, else `models/` of this checkout."""
    override = os.environ.get(MODELS_DIR_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[2] / "models"


def list_specs() -> list[str]:
    """Names of the zoo's specs, sorted."""
    folder = zoo_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in SPEC_SUFFIXES)


def resolve_spec_path(ref: str | Path) -> Path:
    """A zoo name (`mlp5_bn`) or the path of a YAML file -> the file's path."""
    path = Path(ref)
    if path.suffix in SPEC_SUFFIXES or path.parent != Path("."):
        if not path.is_file():
            raise SpecError([SpecProblem("", "no such spec file")], path)
        return path
    for suffix in SPEC_SUFFIXES:
        candidate = zoo_dir() / f"{ref}{suffix}"
        if candidate.is_file():
            return candidate
    known = list_specs()
    raise SpecError([SpecProblem("", f"unknown spec {str(ref)!r}: not a file and not in the zoo "
                                     f"({zoo_dir()}); `harness list` shows the {len(known)} "
                                     "zoo specs")], ref)


def load_spec(ref: str | Path) -> ModelSpec:
    """Load and fully validate a spec (schema and shapes). Raises SpecError."""
    path = resolve_spec_path(ref)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecProblem("", f"cannot read: {exc}")], path) from None
    return parse_spec(text, source=path, default_name=path.stem)


def parse_spec(text: str, source: str | Path = "<string>", default_name: str | None = None
               ) -> ModelSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError([_yaml_problem(exc)], source) from None
    if not isinstance(data, dict):
        raise SpecError([SpecProblem("", "expected a YAML mapping with input, layers and train, "
                                         f"got {type(data).__name__}")], source)
    if default_name is not None:
        data.setdefault("name", default_name)
    try:
        spec = ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_pydantic_problem(e, data) for e in exc.errors()], source) from None
    try:
        infer(spec)
    except SpecError as exc:
        raise exc.with_source(source) from None
    return spec


def spec_hash(spec: ModelSpec) -> str:
    """A stable hash of everything that defines the function and its training."""
    canonical = json.dumps(spec.model_dump(mode="json", exclude={"description", "reference"}),
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def dump_spec(spec: ModelSpec) -> str:
    """The spec as YAML that `parse_spec` reads back to an equal spec."""
    return yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)


def _yaml_problem(exc: yaml.YAMLError) -> SpecProblem:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return SpecProblem(where, f"invalid YAML: {problem}")


def _location(loc: tuple[Any, ...], data: Any) -> str:
    """('layers', 3, 'dense', 'units') -> 'layers[3].units' (drops union tags pydantic adds)."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            parts.append(f"[{key}]")
            node = node[key] if isinstance(node, (list, tuple)) and key < len(node) else None
            continue
        if isinstance(node, dict) and key not in node and key in (node.get("type"),
                                                                  node.get("name")):
            continue  # a discriminated union's tag, not a field
        parts.append(f".{key}" if parts else str(key))
        node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts)


def _pydantic_problem(error: Any, data: Any) -> SpecProblem:
    where = _location(tuple(error["loc"]), data)
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = ctx.get("discriminator", "").strip("'")
        where = f"{where}.{field}" if where else field
        expected = sorted(t.strip().strip("'") for t in ctx.get("expected_tags", "").split(","))
        if kind == "union_tag_not_found":
            return SpecProblem(where, f"missing; expected one of {expected}")
        return SpecProblem(where, f"expected one of {expected}, got {ctx.get('tag')!r}")
    if kind == "literal_error":
        expected = [s.strip().strip("'") for s in
                    ctx.get("expected", "").replace(" or ", ",").split(",")]
        return SpecProblem(where, f"expected one of {expected}, got {value!r}")
    if kind == "missing":
        return SpecProblem(where, "required field is missing")
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error" or kind.startswith("model_"):
        return SpecProblem(where, message)
    return SpecProblem(where, f"{message[0].lower()}{message[1:]}, got {value!r}")
