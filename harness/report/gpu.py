"""`harness report` on the folder of scripts/gpu_check.sh: what ran on which GPU (or on the CPU,
for its dry run), the CNN study's accuracy beside the committed CPU figures, ONNX Runtime on
CUDA against PyTorch on CUDA with intervals, and where ONNX Runtime ran every node.

    OUT/
      gpu-check.json          kind "gpu-check": mode (gpu | dry-run), the steps (status, exit
                              code, seconds, log), the commit, the CPU reference folder
      facts/versions.json     library versions and what PyTorch, JAX and ONNX Runtime saw
      facts/nvidia-smi.csv    name, driver, memory, compute capability (absent without a GPU)
      bench/<spec>/<spec>.latency.json   `harness bench` records (harness.latency.bench)
      placement.json          every node of each bench ONNX file, per provider
      study/jobs/<job>/       the CNN study's jobs (a run folder without run.json)
      logs/<step>.log

Every file but the manifest is optional: a step that failed leaves a hole, and the report says
which step and where its log is. harness.report.gpu_report writes the report.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness.errors import UsageError
from harness.records.folders import GPU_MANIFEST, JOBS_DIR

KIND = "gpu-check"
MODES = ("gpu", "dry-run")
STUDY = "cnn_depth_kernel"
NO_GPU = "not measured: no GPU"


@dataclass
class GpuCheck:
    """One gpu_check.sh folder, read. `study` and `cpu` are RunData (harness.report.load) or
    None when that part is not there."""

    folder: Path
    manifest: dict[str, Any]
    versions: dict[str, Any] = field(default_factory=dict)
    smi: list[dict[str, str]] = field(default_factory=list)  # one row per GPU
    bench: list[dict[str, Any]] = field(default_factory=list)  # latency.json records, read
    placement: list[dict[str, Any]] = field(default_factory=list)
    study: Any = None
    cpu: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def on_gpu(self) -> bool:
        return self.manifest.get("mode") == "gpu"

    def failed_steps(self) -> list[dict[str, Any]]:
        return [s for s in self.manifest.get("steps", [])
                if s.get("status") == "failed" and s.get("name") != "total"]


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's gpu-check.json; UsageError (one line) when it is missing or not one."""
    path = folder / GPU_MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{folder}: no {GPU_MANIFEST}: not a scripts/gpu_check.sh "
                         "folder") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise UsageError(f"{path}: not a gpu-check record (kind must be {KIND!r})")
    if manifest.get("mode") not in MODES or not isinstance(manifest.get("steps"), list):
        raise UsageError(f"{path}: damaged: mode must be one of {', '.join(MODES)} and steps a "
                         f"list (got mode {manifest.get('mode')!r})")
    return manifest


def _optional_json(path: Path, notes: list[str]) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        notes.append(f"{path.name}: unreadable ({' '.join(str(exc).split())[:150]}); left out")
        return None


def _smi_rows(path: Path, notes: list[str]) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return [{key.strip(): (value or "").strip() for key, value in row.items() if key}
                    for row in csv.DictReader(handle, skipinitialspace=True)]
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        notes.append(f"{path.name}: unreadable ({exc}); left out")
        return []


def _bench(folder: Path, notes: list[str]) -> list[dict[str, Any]]:
    results = []
    for path in sorted(folder.glob("bench/*/*.latency.json")):
        data = _optional_json(path, notes)
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            results.append(data)
        elif data is not None:
            notes.append(f"{path.name}: not a latency record; left out")
    return results


def cpu_reference(manifest: dict[str, Any], notes: list[str]) -> Path | None:
    """The committed CPU run the study is set beside: the manifest's folder, relative to the
    current folder or to the harness checkout."""
    given = manifest.get("cpu_reference")
    if not given:
        return None
    for base in (Path.cwd(), Path(harness.__file__).resolve().parents[1]):
        if (base / given / JOBS_DIR).is_dir():
            return base / given
    notes.append(f"CPU figures: {given} not found here (run the report from the checkout)")
    return None


def load_gpu_check(folder: Path | str) -> GpuCheck:
    from harness.report.load import load_run

    folder = Path(folder)
    check = GpuCheck(folder, read_manifest(folder))
    check.versions = _optional_json(folder / "facts" / "versions.json", check.notes) or {}
    check.smi = _smi_rows(folder / "facts" / "nvidia-smi.csv", check.notes)
    check.bench = _bench(folder, check.notes)
    placement = _optional_json(folder / "placement.json", check.notes) or {}
    check.placement = list(placement.get("files") or [])
    if (folder / "study" / JOBS_DIR).is_dir():
        check.study = load_run(folder / "study")
        check.notes += [f"study: {note}" for note in check.study.notes]
    reference = cpu_reference(check.manifest, check.notes)
    if reference is not None:
        check.cpu = load_run(reference)
    return check
