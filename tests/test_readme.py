"""The README's first run, as a new user types it (small data: under two minutes), and the
links of the README and docs/ pages: each names a file that exists."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
QUICK_START = re.compile(r"<!-- quick-start[^>]*-->\n(.*?)<!-- /quick-start -->", re.S)


def quick_start_commands() -> list[list[str]]:
    block = QUICK_START.search(README.read_text(encoding="utf-8"))
    assert block, "README.md has no quick-start block"
    return [shlex.split(line.strip()) for line in block.group(1).splitlines() if line.strip()]


def test_the_quick_start_is_two_harness_commands_into_one_folder() -> None:
    run, report = quick_start_commands()
    assert run[:2] == ["harness", "run"] and report[:2] == ["harness", "report"]
    assert run[run.index("--out") + 1] == report[2]


@pytest.mark.skipif(not os.environ.get("HARNESS_DATA_DIR"), reason="needs HARNESS_DATA_DIR")
def test_the_quick_start_runs_and_says_what_the_readme_promises(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    run, report = quick_start_commands()
    out = run[run.index("--out") + 1]
    done = []
    for command in (run, report):
        argv = [sys.executable, "-m", "harness", *command[1:]]
        done.append(subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True,
                                   timeout=1800))
        assert done[-1].returncode == 0, done[-1].stdout[-3000:] + done[-1].stderr[-3000:]
    printed = done[0].stdout
    assert "what the jobs came to" in printed
    for job in ("mlp2--keras--seed0", "mlp2--torch--seed0", "cnn3_k3--keras--seed0",
                "cnn3_k3--torch--seed0"):
        assert job in printed
    assert f"next: harness report {out}" in printed and "passed" in printed
    text = (tmp_path / out / "report" / "report.md").read_text(encoding="utf-8")
    assert text.index("## Decision") < text.index("## Findings")
    assert "not comparable (2 of 15 epochs, 2,000 of 60,000 training images" in text


LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", [README, *sorted((ROOT / "docs").glob("*.md"))],
                         ids=lambda page: page.name)
def test_every_relative_link_names_a_file_that_exists(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_the_layer_table_lists_every_layer_type() -> None:
    """The README's layer table has one row per spec layer type, no more."""
    from harness.spec.layers import LAYER_TYPES

    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Layers"):text.index("## Documentation")]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", table, flags=re.MULTILINE)
    assert sorted(rows) == sorted(LAYER_TYPES)


OWN_MODEL = re.compile(r"<!-- own-model[^>]*-->\n(.*?)<!-- /own-model -->", re.S)


def own_model_commands() -> list[list[str]]:
    """The `$ ` lines of the README's "Your own model" walkthrough, in order."""
    block = OWN_MODEL.search(README.read_text(encoding="utf-8"))
    assert block, "README.md has no own-model block"
    return [shlex.split(line.strip()[2:]) for line in block.group(1).splitlines()
            if line.strip().startswith("$ ")]


def test_the_own_model_walkthrough_saves_imports_trains_exports_and_benchmarks() -> None:
    steps = [command[:2] for command in own_model_commands()]
    assert steps[0] == ["python", "examples/own_model/save_keras_model.py"]
    assert [step[1] for step in steps[1:]] == ["import", "train", "train", "export", "export",
                                               "bench"]


@pytest.mark.skipif(not os.environ.get("HARNESS_DATA_DIR"), reason="needs HARNESS_DATA_DIR")
def test_the_own_model_walkthrough_runs_as_written(tmp_path: Path) -> None:
    """Every command of the walkthrough, in a fresh folder: each exits 0, the import proves
    itself in every backend, the weights file is written and both exports pass their checks
    (that training starts from the imported weights: tests/importing/test_import_command.py)."""
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    done = []
    for command in own_model_commands():
        if command[0] == "python":  # the script of this checkout, run where the user is
            argv = [sys.executable, str(ROOT / command[1]), *command[2:]]
        else:
            argv = [sys.executable, "-m", "harness", *command[1:]]
        done.append(subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True,
                                   timeout=900))
        assert done[-1].returncode == 0, done[-1].stdout[-3000:] + done[-1].stderr[-3000:]
    assert "saved convnet.keras" in done[0].stdout
    proof = done[1].stdout
    assert proof.count("same") == 4 and "DIFFERS" not in proof
    assert (tmp_path / "convnet.weights.npz").is_file()
    for exported in done[4:6]:
        assert "ONNX checker and shape inference passed" in exported.stdout
