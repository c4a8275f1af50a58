"""Read a run's speed records: RUN_DIR/speed/specs/*.json (one SpecSpeed per spec) and the
repeat pass RUN_DIR/speed/repeat/*.json (the same specs timed again later: drift and
repeatability)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from harness.measure.intervals import noise_floor
from harness.measure.speed_records import Comparison, Kind, SpecSpeed

SPEED_DIR = "speed"
SPECS_DIR = "specs"
REPEAT_DIR = "repeat"


def speed_dir(run_dir: Path) -> Path:
    return Path(run_dir) / SPEED_DIR


@dataclass
class SpeedData:
    """A run's speed records, by spec name; `problems` names each unreadable file."""

    specs: dict[str, SpecSpeed] = field(default_factory=dict)
    repeat: dict[str, SpecSpeed] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def aa(self, kind: Kind) -> list[Comparison]:
        return [c for record in [*self.specs.values(), *self.repeat.values()]
                for c in record.comparisons if c.aa and c.kind == kind]

    def floor(self, kind: Kind) -> float | None:
        """The A/A noise floor of this kind of comparison (log scale), None unmeasured."""
        return noise_floor(self.aa(kind))


def _read_folder(folder: Path, problems: list[str]) -> dict[str, SpecSpeed]:
    records: dict[str, SpecSpeed] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = SpecSpeed.model_validate_json(path.read_bytes())
        except (OSError, ValidationError, ValueError) as exc:
            problems.append(f"{path}: not a speed record ({str(exc).splitlines()[0]})")
            continue
        records[record.spec] = record
    return records


def load_speed(run_dir: Path) -> SpeedData:
    base = speed_dir(run_dir)
    problems: list[str] = []
    specs = _read_folder(base / SPECS_DIR, problems)
    repeat = _read_folder(base / REPEAT_DIR, problems)
    return SpeedData(specs=specs, repeat=repeat, problems=problems)
