"""Which spec a job ran and where its figures belong: the sweep point as a label, the spec's
published `reference` (the zoo's file, newly corrected figures included, when it holds the same
model; else the job's own spec.yaml), and the study it is reported in."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from harness.records.folders import JobFolder
from harness.spec import SpecError, load_spec, spec_hash, zoo_dir


def point_label(overrides: dict[str, Any] | None) -> str:
    """A sweep point as one stable string ("" for the spec as written)."""
    if not overrides:
        return ""
    return ", ".join(f"{key}={overrides[key]}" for key in sorted(overrides))


@cache
def _zoo_hash(spec_name: str) -> str | None:
    try:
        return spec_hash(load_spec(spec_name))
    except SpecError:
        return None


def spec_reference(job_dir: Path | None, spec_name: str, job_spec_hash: str | None = None
                   ) -> dict[str, Any]:
    """The spec's `reference` block. The zoo's file comes first when it holds the same model
    (same spec hash, which leaves the reference out): a reference corrected after the run, say
    newly published figures, then reaches the report. Else the job's own spec.yaml."""
    zoo_file = zoo_dir() / f"{spec_name}.yaml"
    job_file = JobFolder(job_dir).spec if job_dir is not None else None
    same_model = zoo_file.is_file() and job_spec_hash in (None, _zoo_hash(spec_name))
    for path in (zoo_file, job_file) if same_model else (job_file, zoo_file):
        if path is None or not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and isinstance(data.get("reference"), dict):
            return data["reference"]
    return {}


def study_of(reference: dict[str, Any]) -> str:
    """reference.study, else the notebook the model comes from, so the catalog's groups hold."""
    if reference.get("study"):
        return str(reference["study"])
    source = str(reference.get("source") or "").split(",")[0].strip()
    return f"notebook {source.removesuffix('.txt')}" if source else "other"
