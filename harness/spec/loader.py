"""Load specs from YAML (a zoo name or a user's file), validate them once, and list the zoo.

Every problem becomes a `SpecError` whose lines read `file: layers[3].type: expected ..., got ...`.
"""

from __future__ import annotations

import hashlib
import json
import os
import reprlib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.errors import UsageError
from harness.spec.errors import SpecError, SpecProblem
from harness.spec.files import HASH_CONTEXT, SPEC_DIR_CONTEXT
from harness.spec.schema import UNION_TAGS, ModelSpec
from harness.spec.shapes import infer

MODELS_DIR_ENV = "HARNESS_MODELS_DIR"
ZOO_PACKAGE_FOLDER = "zoo"  # package data: harness/zoo/*.yaml
# The zoos: the MNIST notebooks' models (the zoo folder itself, the default everywhere), the
# modern architectures (its `modern` subfolder) and the frameworks' own published MNIST examples
# (`examples`: keras.io's and pytorch/examples'). A spec name is unique across them.
ZOOS = ("mnist", "modern", "examples")
ALL_ZOOS = "all"
SPEC_SUFFIXES = (".yaml", ".yml")
MAX_SPEC_BYTES = 2 * 1024 * 1024  # zoo specs are ~2 kB; more is not a spec
MAX_NESTING = 16  # levels of mappings/lists (a spec uses 4: layers[i].kernel_initializer.name)
MAX_PARAMS = 100_000_000  # ~400 MB of float32 weights; the zoo's largest has a few million
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping, where and which (the loader's SpecProblem)."""

    def __init__(self, problem: SpecProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _UniqueKeyLoader(_YAML_LOADER):  # type: ignore[misc, valid-type]
    """The safe loader, refusing a key given twice in one mapping: PyYAML keeps the last one,
    so `batch_size: 128` then `batch_size: 7` would train with 7 without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges, overriding is its point
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = first_lines.get(key)
            except TypeError:  # an unhashable key: the safe loader's own error says so
                continue
            if first is not None:
                raise _DuplicateKey(SpecProblem(
                    _mark(key_node), f"key {reprlib.repr(key)} given twice in one mapping "
                                     f"(first on line {first}); give each key once"))
            first_lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def zoo_dir(zoo: str = ZOOS[0]) -> Path:
    """A zoo's folder: the MNIST zoo is $HARNESS_MODELS_DIR, else the zoo shipped inside the
    package; another zoo is the subfolder of that name (which may be missing: an empty zoo).

    The zoo is package data, so a wheel or `pip install .` carries it just as a checkout does.
    """
    override = os.environ.get(MODELS_DIR_ENV)
    base = Path(override) if override else Path(str(resources.files("harness")
                                                     / ZOO_PACKAGE_FOLDER))
    return base if zoo == ZOOS[0] else base / zoo


def _zoo_specs(zoo: str) -> list[str]:
    folder = zoo_dir(zoo)
    if zoo != ZOOS[0] and not folder.is_dir():
        return []
    if not folder.is_dir():
        if os.environ.get(MODELS_DIR_ENV):
            raise UsageError(f"{MODELS_DIR_ENV}: {folder}: not a folder; set it to a folder of "
                             "spec YAML files, or unset it to use the zoo inside the package")
        raise UsageError(f"model zoo: {folder}: not a folder (an incomplete install); "
                         f"reinstall harness, or set {MODELS_DIR_ENV} to a folder of spec files")
    return sorted(p.stem for p in folder.iterdir() if p.suffix in SPEC_SUFFIXES)


def list_specs(zoo: str = ZOOS[0]) -> list[str]:
    """Names of a zoo's specs (`all`: every zoo's), sorted. A missing MNIST zoo folder is an
    error, not an empty zoo."""
    if zoo == ALL_ZOOS:
        return sorted(name for each in ZOOS for name in _zoo_specs(each))
    if zoo not in ZOOS:
        raise UsageError(f"zoo {zoo!r}: expected one of {[*ZOOS, ALL_ZOOS]}")
    return _zoo_specs(zoo)


def _is_file(path: Path) -> bool:
    """`path.is_file()`, False also for names the OS refuses (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def resolve_spec_path(ref: str | Path) -> Path:
    """A zoo name (`mlp5_bn`) or the path of a YAML file -> the file's path."""
    path = Path(ref)
    if path.suffix in SPEC_SUFFIXES or path.parent != Path("."):
        if not _is_file(path):
            raise SpecError([SpecProblem("", "no such spec file")], path)
        return path
    for zoo in ZOOS:
        for suffix in SPEC_SUFFIXES:
            candidate = zoo_dir(zoo) / f"{ref}{suffix}"
            if _is_file(candidate):
                return candidate
    known = list_specs(ALL_ZOOS)
    raise SpecError([SpecProblem("", f"unknown spec {str(ref)!r}: not a file and not in the zoo "
                                     f"({zoo_dir()}); `harness list --zoo all` shows the "
                                     f"{len(known)} zoo specs")], ref)


def load_spec(ref: str | Path) -> ModelSpec:
    """Load and fully validate a spec (schema and shapes). Raises SpecError."""
    path = resolve_spec_path(ref)
    return parse_spec(read_text(path, MAX_SPEC_BYTES), source=path, default_name=path.stem)


def read_text(path: Path, max_bytes: int) -> str:
    """A UTF-8 file's text, never more than `max_bytes` + 1 bytes of it whatever the file holds
    (/dev/zero, a FIFO; load_yaml refuses the extra byte). SpecError naming the path."""
    try:
        with open(path, "rb") as handle:
            return handle.read(max_bytes + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecProblem("", f"cannot read: {exc}")], path) from None


def parse_spec(text: str, source: str | Path = "<string>", default_name: str | None = None
               ) -> ModelSpec:
    data = load_yaml(text, source)
    if not isinstance(data, dict):
        raise SpecError([SpecProblem("", "expected a YAML mapping with input, layers and train, "
                                         f"got {type(data).__name__}")], source)
    if default_name is not None:
        data.setdefault("name", default_name)
    # files the spec names (data, initial weights) are read relative to the spec's own folder
    spec_dir = Path(source).parent if isinstance(source, Path) else None
    try:
        spec = ModelSpec.model_validate(data, context={SPEC_DIR_CONTEXT: spec_dir})
    except ValidationError as exc:
        raise SpecError([_pydantic_problem(e, data) for e in exc.errors()], source) from None
    try:
        params = infer(spec).total_params
    except SpecError as exc:
        raise exc.with_source(source) from None
    if params > MAX_PARAMS:
        raise SpecError([SpecProblem("layers", f"{params:,} parameters; a spec may have at most "
                                               f"{MAX_PARAMS:,}")], source)
    return spec


def load_yaml(text: str, source: str | Path = "<string>", max_chars: int = MAX_SPEC_BYTES
              ) -> Any:
    """YAML text -> Python data, within the limits of the harness's YAML files, specs and run
    plans (size, nesting, no aliases, no key twice in a mapping).

    Raises SpecError naming `source` for text that is too big, too deep or not YAML, so no
    input reaches a RecursionError, a MemoryError (aliases nested into a "billion laughs") or
    a parser exception.
    """
    if len(text) > max_chars:
        raise SpecError([SpecProblem("", f"more than {max_chars:,} characters; a spec or plan "
                                         "is a few kB")], source)
    try:
        problem = _structure_problem(text)
        if problem is None:
            return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a safe loader
    except _DuplicateKey as exc:
        problem = exc.problem
    except yaml.YAMLError as exc:
        problem = _yaml_problem(exc)
    except (ValueError, OverflowError) as exc:  # a scalar YAML resolves but cannot build
        problem = SpecProblem("", f"invalid YAML: {exc}")
    raise SpecError([problem], source)


def _structure_problem(text: str) -> SpecProblem | None:
    """Nesting deeper than MAX_NESTING, or an alias, found from the parser's events (the
    parser keeps its own stack; composing the nodes recurses and would overflow)."""
    depth = 0
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.AliasEvent):
            return SpecProblem(_mark(event), "YAML aliases (*name) are not allowed in a spec "
                                             "or plan; write the value out")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_NESTING:
                return SpecProblem(_mark(event), f"nested more than {MAX_NESTING} levels deep; "
                                                 "a spec needs 4, a plan 3")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return None


def _mark(item: yaml.Event | yaml.Node) -> str:
    mark = item.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


def spec_hash(spec: ModelSpec) -> str:
    """A stable hash of everything that defines the function and its training."""
    canonical = json.dumps(spec.model_dump(mode="json", exclude={"description", "reference"},
                                           context={HASH_CONTEXT: True}),
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def training_hash(spec: ModelSpec) -> str:
    """A hash of the model as trained: layers, input, optimizer, batch, epochs, seed, data.
    Two specs with the same training_hash train the same model to the same weights (their
    name, description, reference and validation set may differ): they are aliases, timed and
    counted once. A validation split is no alias's difference: it holds out training data."""
    data = spec.model_dump(mode="json", exclude={"name", "description", "reference"},
                           context={HASH_CONTEXT: True})
    if spec.train.validation_split is None:
        data.get("train", {}).pop("validation", None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def dump_spec(spec: ModelSpec) -> str:
    """The spec as YAML that `parse_spec` reads back to an equal spec."""
    return dump_spec_data(spec.model_dump(mode="json", exclude_none=True))


class _FlowDumper(_YAML_DUMPER):  # type: ignore[misc, valid-type]
    """The safe dumper that writes `_Flow` mappings and lists of scalars on one line."""


class _Flow(dict):  # type: ignore[type-arg]
    """A mapping written in flow style: `{type: dense, units: 10}`."""


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flat = all(not isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat or None)


_FlowDumper.add_representer(_Flow, _represent_flow)
_FlowDumper.add_representer(list, _represent_list)
# the mappings a spec writes one to a line, as the zoo's files do
_FLOW_PATHS = (("input",), ("train", "optimizer"), ("train", "schedule"),
               ("reference", "params"))


def dump_spec_data(data: dict[str, Any]) -> str:
    """A spec's plain data as YAML laid out like the zoo's files: a layer per line, the input,
    optimizer and schedule on one line each, lists of numbers inline."""
    data = dict(data)
    if isinstance(data.get("layers"), list):
        data["layers"] = [_Flow(layer) if isinstance(layer, dict) else layer
                          for layer in data["layers"]]
    for path in _FLOW_PATHS:
        parent = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(path[-1]), dict):
            parent[path[-1]] = _Flow(parent[path[-1]])
    return yaml.dump(data, Dumper=_FlowDumper, sort_keys=False, allow_unicode=True, width=100)


def dump_yaml(data: Any) -> str:
    """Plain data as YAML, keys in their order (libyaml's emitter when available: fast)."""
    return yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True)


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
        if key in UNION_TAGS:  # a union's tag (harness.spec.schema), not a field
            continue
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
        if kind == "union_tag_not_found":  # pydantic names no tags then
            return SpecProblem(where, "required field is missing")
        return SpecProblem(where, f"expected one of {expected}, got "
                                  f"{reprlib.repr(ctx.get('tag'))}")
    if kind == "literal_error":
        expected = [s.strip().strip("'") for s in
                    ctx.get("expected", "").replace(" or ", ",").split(",")]
        return SpecProblem(where, f"expected one of {expected}, got {reprlib.repr(value)}")
    if kind == "missing":
        return SpecProblem(where, "required field is missing")
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error" or kind.startswith("model_"):
        return SpecProblem(where, message)
    why = ""
    if kind in ("int_type", "float_type") and isinstance(value, (bool, str)):
        why = f" (a {'boolean' if isinstance(value, bool) else 'string'} is not a number)"
    return SpecProblem(where, f"{message[0].lower()}{message[1:]}, got "
                              f"{reprlib.repr(value)}{why}")
