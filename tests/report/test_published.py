"""The zoo's published figures are the catalog's (shared/catalog.md, beside the repository):
files 000 and 002 in each model's "Published:" line, files 003 and 004 in a table at the end,
file 001 (the CNN study) in another.
A figure the notebook's own records disagree about carries `published_ambiguity`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.spec import list_specs, load_spec

CATALOG = Path(__file__).resolve().parents[2].parent / "shared" / "catalog.md"
PUBLISHED_LINE = re.compile(r"^Published: test loss ([\d.]+), test accuracy ([\d.]+)\.(.*)$")
FINAL_TABLES = ("## Published test numbers of files 003 and 004",
                "## Published test numbers of file 001")
NOT_PUBLISHED = "–"  # a table row whose notebook printed no figure
# Catalog wording of a disagreement between the notebook's own records.
DISAGREEMENT = re.compile(r"disagree|misattribut|suggests|instead", re.IGNORECASE)
TEST_FIGURE_AGREES = re.compile(r"table Test [\d.]+ agrees")


def catalog_text() -> str:
    if not CATALOG.is_file():
        pytest.skip(f"model catalog not found at {CATALOG} (the shared folder beside the repo)")
    return CATALOG.read_text(encoding="utf-8")


def published_in_catalog() -> dict[str, tuple[float, float, str]]:
    """spec -> (test loss, test accuracy, what the catalog says about those figures)."""
    text = catalog_text()
    found: dict[str, tuple[float, float, str]] = {}
    section = None
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("### "):
            section = line.split()[1]
        elif (match := PUBLISHED_LINE.match(line)) and section:
            remark = match.group(3) + " " + lines[index + 1]  # a remark may wrap
            found[section] = (float(match.group(1)), float(match.group(2)), remark)
    for heading in FINAL_TABLES:
        table = text[text.index(heading):].split("\n## ")[0]
        for row in table.splitlines():
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            if len(cells) == 9 and cells[0] in list_specs() and NOT_PUBLISHED not in cells[4:6]:
                found[cells[0]] = (float(cells[4]), float(cells[5]), cells[8])
    return found


def test_every_published_figure_of_the_catalog_is_in_its_spec() -> None:
    catalog = published_in_catalog()
    assert {"mlp2", "softmax_sgd", "lenet5_bn_hidden", "mlp512_128_relu_do1_do2_adam",
            "cnn7_k3"} <= set(catalog)  # one of each file 000, 002, 003, 004, 001: parsed
    for name in list_specs():
        reference = load_spec(name).reference
        assert reference is not None, name
        if name in catalog:
            loss, accuracy, _ = catalog[name]
            assert reference.published_test_loss == loss, name
            assert reference.published_test_accuracy == accuracy, name
        else:  # the Keras example of file 001 and the grid-search candidates (CV scores only)
            assert reference.published_test_loss is None, name
            assert reference.published_test_accuracy is None, name


def test_figures_the_notebook_disagrees_about_are_ambiguous() -> None:
    catalog = published_in_catalog()
    disputed = {name for name, (_, _, remark) in catalog.items()
                if DISAGREEMENT.search(remark) and not TEST_FIGURE_AGREES.search(remark)}
    # lenet5_*: the table's entries are likely misattributed; 004's Model1/3/7: the table's
    # test accuracy differs from the log; mlp512_128_sigmoid_adam: the last validation line;
    # file 001's CNNs: the comparison table differs from the printed test score
    assert disputed == {"lenet5_dropout", "lenet5_bn_dropout", "mlp512_128_64_sigmoid_sgd",
                        "mlp512_128_64_relu_do1_do3_sgd", "mlp512_128_64_sigmoid_do1_bn2_sgd",
                        "mlp512_128_sigmoid_adam", "cnn3_k3", "cnn3_k5", "cnn5_k3", "cnn5_k7",
                        "cnn7_k3", "cnn7_k5", "cnn7_k7"}
    for name in list_specs():
        ambiguity = load_spec(name).reference.published_ambiguity
        assert bool(ambiguity) == (name in disputed), name


def test_every_cnn_of_file_001_carries_its_published_figures() -> None:
    """The CNN study's reproduction verdicts need each spec's published accuracy; only the
    stock Keras example, whose output the notebook did not capture, has none."""
    cnns = [name for name in list_specs()
            if load_spec(name).reference.source.startswith("001_")]
    assert len(cnns) == 13
    for name in cnns:
        reference = load_spec(name).reference
        assert reference.study == "cnn_depth_kernel", name
        if name == "cnn2_k3_keras_example":
            assert reference.published_test_accuracy is None, name
        else:
            assert reference.published_test_accuracy is not None, name
            assert reference.published_test_loss is not None, name
    assert load_spec("cnn7_k3").reference.published_test_accuracy == pytest.approx(0.8385)


def test_an_ambiguity_needs_a_published_figure() -> None:
    from harness.spec import SpecError
    from harness.spec.loader import parse_spec

    text = (Path(__file__).resolve().parents[2] / "models" / "cnn2_k3_keras_example.yaml"
            ).read_text()  # it publishes no figure
    broken = text.replace("  study: cnn_depth_kernel\n",
                          "  study: cnn_depth_kernel\n  published_ambiguity: which figure\n")
    with pytest.raises(SpecError, match="published_ambiguity"):
        parse_spec(broken, "cnn2_k3_keras_example.yaml")
