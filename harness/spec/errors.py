"""One error type for every way a spec can be wrong, formatted as `file: where: what`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SpecProblem:
    where: str  # e.g. "layers[3].type" or "train.optimizer.learning_rate"
    message: str  # e.g. "expected one of ['dense', ...], got 'bn'"

    def __str__(self) -> str:
        message = " ".join(self.message.split())  # one line, whatever a parser's message held
        return f"{self.where}: {message}" if self.where else message


class SpecError(ValueError):
    """A spec that cannot be used. `str()` gives one line per problem, each naming the file."""

    def __init__(self, problems: list[SpecProblem], source: str | Path | None = None) -> None:
        self.problems = list(problems)
        self.source = str(source) if source is not None else None
        super().__init__(str(self))

    def with_source(self, source: str | Path) -> SpecError:
        return SpecError(self.problems, source)

    def __str__(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(f"{prefix}{problem}" for problem in self.problems)
