"""The model zoo: every spec loads, its inferred parameter counts match its reference, and the zoo
covers the catalog of notebook models (shared/catalog.md, beside the repository) exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.spec import infer, list_specs, load_spec

CATALOG = Path(__file__).resolve().parents[3] / "shared" / "catalog.md"
ZOO_SIZE = 41
ZOO = list_specs()

_HEADING = re.compile(r"^### (\S+)", re.MULTILINE)
_TOTAL = re.compile(r"Total \*\*([\d,]+)\*\*")
_SPLIT = re.compile(r"Total \*\*[\d,]+\*\* \(([\d,]+) trainable, ([\d,]+) non-trainable\)")


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _catalog() -> dict[str, dict[str, int | None]]:
    """Catalog name -> {total, trainable, non_trainable} (split None where the catalog omits it)."""
    if not CATALOG.is_file():
        pytest.skip(f"model catalog not found at {CATALOG} (the shared folder beside the repo)")
    text = CATALOG.read_text(encoding="utf-8")
    starts = [m.start() for m in _HEADING.finditer(text)]
    entries: dict[str, dict[str, int | None]] = {}
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        section = text[start:end].split("\n## ", 1)[0]  # stop at the next file's section
        name = _HEADING.match(section).group(1)
        total = _TOTAL.search(section)
        assert total, f"catalog entry {name!r} states no 'Total **N**'"
        split = _SPLIT.search(section)
        entries[name] = {
            "total": _int(total.group(1)),
            "trainable": _int(split.group(1)) if split else None,
            "non_trainable": _int(split.group(2)) if split else None,
        }
    return entries


def test_zoo_has_every_model() -> None:
    assert len(ZOO) == ZOO_SIZE, f"expected {ZOO_SIZE} zoo specs, found {len(ZOO)}: {ZOO}"


@pytest.mark.parametrize("name", ZOO)
def test_spec_matches_its_reference(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name, "spec name must equal the file stem"
    assert spec.reference is not None and spec.reference.params is not None
    summary = infer(spec)
    expected = spec.reference.params
    assert (summary.total_params, summary.trainable_params, summary.non_trainable_params) == (
        expected.total, expected.trainable, expected.non_trainable)


@pytest.mark.parametrize("name", ZOO)
def test_spec_follows_notebook_conventions(name: str) -> None:
    """Keras 2.x BatchNorm defaults; test-set validation except in file 003 and grid search."""
    spec = load_spec(name)
    for index, layer in enumerate(spec.layers):
        if layer.type == "batchnorm":
            assert (layer.momentum, layer.epsilon) == (0.99, 1e-3), f"layers[{index}]"
    no_validation = spec.reference.source.startswith("003_") or name.startswith("gs_")
    assert spec.train.validation == ("none" if no_validation else "test")
    assert spec.train.seed == 0 and spec.train.shuffle


def test_catalog_models_are_in_the_zoo_with_their_parameter_counts() -> None:
    catalog = _catalog()
    assert len(catalog) == ZOO_SIZE, f"catalog lists {len(catalog)} models, expected {ZOO_SIZE}"
    assert sorted(catalog) == ZOO, (
        f"missing from the zoo: {sorted(set(catalog) - set(ZOO))}; "
        f"not in the catalog: {sorted(set(ZOO) - set(catalog))}")
    for name, counts in catalog.items():
        summary = infer(load_spec(name))
        assert summary.total_params == counts["total"], name
        if counts["trainable"] is not None:
            assert summary.trainable_params == counts["trainable"], name
            assert summary.non_trainable_params == counts["non_trainable"], name
