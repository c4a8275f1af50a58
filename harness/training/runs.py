"""Finding and reading `harness train` runs: their training speed, for benchmarks and tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.records.io import read_json
from harness.training import METRICS_FILE

TRAINING_COLUMNS = ("run", "spec", "backend", "device", "threads", "epochs",
                    "first epoch s", "steady epoch s", "samples/s")
# A figure a run has none of (the steady epoch of a one-epoch run), as the report shows it
# (harness.report.format.MISSING, which this module cannot import: it needs pandas).
MISSING = "–"


def training_speed(metrics: dict[str, Any]) -> dict[str, Any]:
    """Epoch speed of one run (its metrics.json): the first epoch (tracing, compilation,
    warm-up) apart from the steady epochs, and steady samples per second."""
    timing = metrics["timing"]
    return {
        "spec": metrics["spec"]["name"],
        "backend": metrics["backend"],
        "device": metrics["device"],
        "threads": metrics["environment"]["backend"].get("intra_op_threads"),
        "epochs": len(metrics["history"]),
        "n_train": metrics["n_train"],
        "batch_size": metrics["batch_size"],
        "first_epoch_seconds": timing["first_epoch_seconds"],
        "steady_epoch_seconds": timing["steady_epoch_seconds"],
        "samples_per_second": timing["samples_per_second"],
    }


def training_rows(speeds: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Table cells for `training_speed` results (with their run_dir), as TRAINING_COLUMNS."""
    def num(value: Any, fmt: str) -> str:
        return MISSING if value is None else format(value, fmt)

    return [[str(s.get("run_dir", "")), str(s["spec"]), str(s["backend"]), str(s["device"]),
             "default" if not s["threads"] else str(s["threads"]), str(s["epochs"]),
             num(s["first_epoch_seconds"], ".2f"),
             num(s["steady_epoch_seconds"], ".2f"), num(s["samples_per_second"], ",.0f")]
            for s in speeds]


def read_training_speed(run_dir: Path) -> dict[str, Any]:
    return {**training_speed(read_json(Path(run_dir) / METRICS_FILE)), "run_dir": str(run_dir)}


def find_run(runs_root: Path, spec_name: str, backend: str) -> Path | None:
    """The latest successful training run of `spec_name` in `backend` under `runs_root`."""
    best: tuple[str, Path] | None = None
    for path in Path(runs_root).rglob(METRICS_FILE):
        try:
            metrics = read_json(path)
        except (OSError, ValueError):
            continue
        if (metrics.get("kind") == "train" and metrics.get("status", "ok") == "ok"
                and (metrics.get("spec") or {}).get("name") == spec_name
                and metrics.get("backend") == backend):
            stamp = str(metrics.get("finished_utc") or "")
            if best is None or stamp > best[0]:
                best = (stamp, path.parent)
    return None if best is None else best[1]
