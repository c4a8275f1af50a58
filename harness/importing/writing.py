"""An imported model written as a spec (and, with `--weights`, its weights beside it).

Everything is checked before anything is written: the spec is validated as `harness` will
read it (schema and shapes), the weights against the spec's layers (keys and shapes); then the
weights file, then the spec that names it with its SHA-256.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UsageError
from harness.importing.imported import ImportedModel
from harness.spec import ModelSpec
from harness.spec.files import sha256_file
from harness.spec.initializers import save_weights, weights_file
from harness.spec.loader import dump_spec_data, dump_yaml, parse_spec

WEIGHTS_SUFFIX = ".weights.npz"


@dataclass(frozen=True)
class Written:
    spec: ModelSpec  # as `harness` reads it back from `path`
    path: Path
    weights_path: Path | None  # the .npz beside the spec (--weights)
    notes: list[str]  # what the import changed or chose, one line each


def spec_name(text: str) -> str:
    """A spec name (file-name characters) from a file's stem."""
    name = re.sub(r"[^A-Za-z0-9_.+-]", "_", text).lstrip("_.+-")[:200]
    return name or "imported"


def spec_data(imported: ImportedModel, name: str, dataset: str, fit: dict[str, int],
              notes: list[str]) -> dict[str, Any]:
    """The spec's mapping; the training settings the file lacks are defaults, said in notes."""
    from harness.importing.keras_training import DEFAULT_OPTIMIZER

    train = dict(imported.train) if imported.train else {
        "optimizer": dict(DEFAULT_OPTIMIZER), "loss": "categorical_crossentropy"}
    if imported.train is None:
        notes.append("the file holds no training settings: the spec trains with Adam at "
                     "Keras' defaults (lr 0.001); edit its train block to change them")
    train.update(fit)
    return {"name": name, "description": f"imported from {imported.source.name}",
            "input": {"dataset": dataset, "shape": list(imported.input_shape)},
            "layers": imported.layers, "train": train}


def write_spec(imported: ImportedModel, out: Path, name: str | None, dataset: str,
               fit: dict[str, int], with_weights: bool) -> Written:
    """Validate, then write `out` (and `<stem>.weights.npz` beside it with `with_weights`)."""
    notes = list(imported.notes)
    data = spec_data(imported, spec_name(name or out.name.split(".")[0]), dataset, fit, notes)
    spec = parse_spec(dump_yaml(data), source=out)  # SpecError (exit 2) before any write
    with tempfile.TemporaryDirectory() as scratch:  # the arrays against the spec, unwritten
        staged = Path(scratch) / "weights.npz"
        save_weights(imported.weights, str(staged))
        weights_file(spec, staged)
    weights_path = None
    if with_weights:
        weights_path = out.with_name(out.name.split(".")[0] + WEIGHTS_SUFFIX)
        if weights_path == out:
            raise UsageError(f"{out}: the spec and its weights would be one file; name the spec "
                             "*.yaml")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_weights({k: np.asarray(v, np.float32) for k, v in imported.weights.items()},
                     str(weights_path))
        # relative to the spec's folder: the two files move together
        data["initial_weights"] = {"path": weights_path.name,
                                   "sha256": sha256_file(weights_path)}
    text = dump_spec_data(data)  # laid out like the zoo's files: a layer per line
    spec = parse_spec(text, source=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return Written(spec, out, weights_path, notes)
