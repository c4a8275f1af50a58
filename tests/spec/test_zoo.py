"""The model zoo: every spec loads, its inferred parameter counts match its reference, and the zoo
covers the catalog of notebook models (shared/catalog.md, beside the repository) exactly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UsageError
from harness.spec import SpecError, infer, list_specs, load_spec, zoo_dir
from harness.spec.loader import MODELS_DIR_ENV

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO.parent / "shared" / "catalog.md"
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


def test_repo_models_entry_has_every_catalog_spec() -> None:
    """The docs and the project's hooks read `models/<name>.yaml` at the repository root."""
    missing = [name for name in _catalog() if not (REPO / "models" / f"{name}.yaml").is_file()]
    assert not missing, f"no models/<name>.yaml for {missing}"


def test_models_dir_env_overrides_the_packaged_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(zoo_dir() / "mlp5_bn.yaml", tmp_path / "mlp5_bn.yaml")
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    assert zoo_dir() == tmp_path and list_specs() == ["mlp5_bn"]
    assert load_spec("mlp5_bn").name == "mlp5_bn"
    with pytest.raises(SpecError, match="unknown spec 'cnn3_k5'"):
        load_spec("cnn3_k5")
    assert main(["list"]) == 0
    listed = " ".join(capsys.readouterr().out.split())  # the title wraps at the table's width
    assert "Model zoo: 1 specs (mnist zoo, " in listed and " mlp5_bn " in listed
    assert "cnn3_k5" not in listed


def test_models_dir_env_naming_no_folder_is_an_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_folder"
    monkeypatch.setenv(MODELS_DIR_ENV, str(missing))
    with pytest.raises(UsageError, match=f"{MODELS_DIR_ENV}: .*no_such_folder: not a folder"):
        list_specs()
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert MODELS_DIR_ENV in err and "Traceback" not in err


def test_missing_packaged_zoo_is_an_error_not_an_empty_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    monkeypatch.setattr("harness.spec.loader.ZOO_PACKAGE_FOLDER", "no_such_zoo")
    with pytest.raises(UsageError, match="model zoo: .*no_such_zoo: not a folder"):
        list_specs()
    with pytest.raises(UsageError, match="incomplete install"):
        load_spec("mlp5_bn")
