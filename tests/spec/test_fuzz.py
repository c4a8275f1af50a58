"""Fuzzing the spec loader: every zoo spec, mutated many ways (seeded), either loads (and then
shape inference works) or raises a SpecError naming the file, never any other exception.
Mutants that must not load (non-finite numbers, booleans or strings where a number belongs,
unknown fields, deep nesting) are checked to be rejected; mutants that load round-trip.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from harness.spec import SpecError, infer, list_specs, parse_spec, spec_hash, zoo_dir
from harness.spec.layers import LAYER_TYPES
from harness.spec.loader import MAX_SPEC_BYTES, dump_spec, dump_yaml, load_yaml

MUTANTS_PER_KIND = 1  # x 41 zoo specs x 12 kinds, plus 3 broken-YAML mutants per spec
Where = tuple[Any, ...]  # keys and indices from the top of the spec's data
DEEP = "__deep_nesting__"


def _walk(node: Any, path: Where = ()) -> list[tuple[Where, Any]]:
    """Every (path, value) below `node`, containers included (the root excluded)."""
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    found = []
    for key, value in children:
        found.append(((*path, key), value))
        found.extend(_walk(value, (*path, key)))
    return found


def _parent(data: Any, path: Where) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


def _numbers(data: Any) -> list[tuple[Where, Any]]:
    return [(p, v) for p, v in _walk(data)
            if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _replace(rng: random.Random, data: Any, candidates: list[tuple[Where, Any]],
             new: Callable[[Any], Any]) -> bool:
    if not candidates:
        return False
    path, value = rng.choice(candidates)
    _parent(data, path)[path[-1]] = new(value)
    return True


# Each mutator changes `data` in place and returns True when the mutant must be rejected.
def delete_field(rng: random.Random, data: Any) -> bool:
    keys = [p for p, _ in _walk(data) if isinstance(_parent(data, p), dict)]
    path = rng.choice(keys)
    del _parent(data, path)[path[-1]]
    return False


def wrong_type(rng: random.Random, data: Any) -> bool:
    choices: list[Any] = [[], {}, "text", None, [1, 2], {"a": 1}, True, 3, 0.5, "", "é" * 50]
    _replace(rng, data, _walk(data), lambda _: copy.deepcopy(rng.choice(choices)))
    return False


def out_of_range(rng: random.Random, data: Any) -> bool:
    choices = [0, -1, -0.5, 1, 1.0, 0.999999, 10**12, 2**32, 10**30, 1e300, -1e300, 1e-320]
    _replace(rng, data, _numbers(data), lambda _: rng.choice(choices))
    return False


def non_finite(rng: random.Random, data: Any) -> bool:
    return _replace(rng, data, _numbers(data),
                    lambda _: rng.choice([math.inf, -math.inf, math.nan]))


def bool_for_number(rng: random.Random, data: Any) -> bool:
    return _replace(rng, data, _numbers(data), lambda _: rng.choice([True, False]))


def string_for_number(rng: random.Random, data: Any) -> bool:
    return _replace(rng, data, _numbers(data), str)


def unknown_layer_type(rng: random.Random, data: Any) -> bool:
    layer = rng.choice(data["layers"])
    layer["type"] = rng.choice(["bn", "Dense", "", "lstm", 3, None, *LAYER_TYPES])
    return False


def swap_layers(rng: random.Random, data: Any) -> bool:
    layers = data["layers"]
    i, j = rng.randrange(len(layers)), rng.randrange(len(layers))
    layers[i], layers[j] = layers[j], layers[i]
    return False


def duplicate_layer(rng: random.Random, data: Any) -> bool:
    layers = data["layers"]
    layers.insert(rng.randrange(len(layers) + 1), copy.deepcopy(rng.choice(layers)))
    return False


def remove_layer(rng: random.Random, data: Any) -> bool:
    data["layers"].pop(rng.randrange(len(data["layers"])))
    return False


def unknown_field(rng: random.Random, data: Any) -> bool:
    mappings = [data, *(v for _, v in _walk(data) if isinstance(v, dict))]
    rng.choice(mappings)[rng.choice(["extra", "Units", "decay", "1", "kernal_size"])] = 1
    return True


def deep_nesting(rng: random.Random, data: Any) -> bool:
    _replace(rng, data, _walk(data), lambda _: DEEP)
    return True


MUTATORS = [delete_field, wrong_type, out_of_range, non_finite, bool_for_number,
            string_for_number, unknown_layer_type, swap_layers, duplicate_layer, remove_layer,
            unknown_field, deep_nesting]


def _mutated_text(rng: random.Random, data: Any, mutate: Callable[..., bool]) -> tuple[str, bool]:
    data = copy.deepcopy(data)
    must_fail = mutate(rng, data)
    text = dump_yaml(data)
    depth = rng.choice([17, 100, 999, 1001, 5000])
    return text.replace(DEEP, "[" * depth + "]" * depth), must_fail


def _broken_yaml(rng: random.Random, text: str) -> str:
    """Text-level damage: truncation, stray syntax, bad indentation, aliases, tags, garbage."""
    cut = rng.randrange(len(text))
    lines = text.splitlines()
    line = rng.randrange(len(lines))
    damage = [
        lambda: text[:cut],
        lambda: text[:cut] + rng.choice(":{}[]&*!|>%@`\t\"'\\") + text[cut:],
        lambda: "\n".join([*lines[:line], "   " + lines[line], *lines[line + 1:]]),
        lambda: text + "\nextra: &anchor [1, 2]\nmore: *anchor\n",
        lambda: text + "\nx: !!python/object/apply:os.system ['true']\n",
        lambda: text.replace(": ", ": !!binary ", 1),
        lambda: text + "\n---\nsecond: document\n",
        lambda: text + f"\ndescription: {'9' * 5000}\n",
        lambda: text + "\ndescription: 2001-02-30\n",
        lambda: "".join(chr(rng.randrange(1, 0x250)) for _ in range(200)),
        lambda: "\n".join("  " * i + "a:" for i in range(3000)) + " 1\n",
        lambda: rng.choice(["", "~", "[]", "42", "- a\n- b\n", "{", "\x00"]),
    ]
    return rng.choice(damage)()


def _check(text: str, source: str, must_fail: bool) -> None:
    try:
        spec = parse_spec(text, source=source)
    except SpecError as exc:
        lines = str(exc).splitlines()
        assert lines and all(line.startswith(f"{source}: ") for line in lines), str(exc)
        return
    except Exception as exc:  # noqa: BLE001 - the point: nothing but SpecError gets out
        pytest.fail(f"{source}: {type(exc).__name__}: {exc}\n--- mutant:\n{text[:2000]}")
    assert not must_fail, f"{source} loaded but must be rejected:\n{text[:2000]}"
    assert infer(spec).total_params > 0  # parse_spec inferred the shapes: they work
    again = parse_spec(dump_spec(spec), source=f"{source} (dumped)")
    assert spec_hash(again) == spec_hash(spec)


def _zoo_data(name: str) -> Any:
    return load_yaml((zoo_dir() / f"{name}.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list_specs())
def test_every_mutant_loads_or_raises_spec_error(name: str) -> None:
    data = _zoo_data(name)
    for mutate in MUTATORS:
        rng = random.Random(f"{name}:{mutate.__name__}")
        for number in range(MUTANTS_PER_KIND):
            text, must_fail = _mutated_text(rng, data, mutate)
            _check(text, f"{name}.{mutate.__name__}.{number}.yaml", must_fail)
    rng = random.Random(f"{name}:broken_yaml")
    text = dump_yaml(data)
    for number in range(MUTANTS_PER_KIND * 3):
        _check(_broken_yaml(rng, text), f"{name}.broken_yaml.{number}.yaml", must_fail=False)


def test_a_huge_file_is_refused_before_parsing() -> None:
    text = "description: " + "x" * MAX_SPEC_BYTES + "\n"
    with pytest.raises(SpecError, match="huge.yaml: more than"):
        parse_spec(text, source="huge.yaml")


def test_the_mutators_change_the_spec() -> None:
    data = _zoo_data("mlp5_bn")
    original = dump_yaml(data)
    for mutate in MUTATORS:
        mutants = {_mutated_text(random.Random(seed), data, mutate)[0] for seed in range(5)}
        assert mutants - {original}, f"{mutate.__name__} never changes the spec"
