"""Framework-neutral model specs: schema, layers, loader, shape inference, initial weights."""

from harness.spec.errors import SpecError, SpecProblem
from harness.spec.initializers import Weights, initial_weights
from harness.spec.loader import (
    list_specs,
    load_spec,
    parse_spec,
    spec_hash,
    training_hash,
    zoo_dir,
)
from harness.spec.schema import SCHEMA_VERSION, ModelSpec
from harness.spec.shapes import LayerInfo, ModelSummary, infer

__all__ = [
    "SCHEMA_VERSION", "LayerInfo", "ModelSpec", "ModelSummary", "SpecError", "SpecProblem",
    "Weights", "infer", "initial_weights", "list_specs", "load_spec", "parse_spec", "spec_hash",
    "training_hash", "zoo_dir",
]
