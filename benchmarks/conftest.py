"""Benchmarks read the datasets from ../shared/data when it exists (never the network)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if "HARNESS_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["HARNESS_DATA_DIR"] = str(SHARED_DATA)


def bench_specs(default: list[str]) -> list[str]:
    """$HARNESS_BENCH_SPECS: comma-separated names, or `all` for the whole zoo."""
    from harness.spec import list_specs

    chosen = os.environ.get("HARNESS_BENCH_SPECS")
    if not chosen:
        return default
    return list_specs() if chosen == "all" else [s.strip() for s in chosen.split(",") if s]


def bench_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


@pytest.fixture(scope="session")
def bench_threads() -> int:
    """The same CPU thread count for every framework ($HARNESS_BENCH_THREADS, default: all)."""
    return bench_int("HARNESS_BENCH_THREADS", os.cpu_count() or 1)
