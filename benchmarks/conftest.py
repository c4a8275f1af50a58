"""Benchmarks read the datasets from ../shared/data when it exists (never the network).

No benchmark fails on timing: ratios and the machine's load go to `extra_info` for
`pytest-benchmark compare` and `harness report`, and a human or a report judges them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--ratios-md", metavar="FILE", default=None,
                     help="write the session's framework ratios as a dated markdown page "
                          "naming the machine (e.g. docs/benchmark-ratios.md)")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Every ratio the session timed, with its interval and verdict (benchmarks/ratios.py),
    and with --ratios-md the same as a page."""
    import sys

    from ratios import SUMMARY, markdown_page, summary_lines

    if not SUMMARY:
        return
    terminalreporter.section("framework ratios (timing protocol)")
    for line in summary_lines():
        terminalreporter.write_line(line)
    if page := config.getoption("--ratios-md"):
        command = "pytest " + " ".join(sys.argv[1:])
        Path(page).write_text(markdown_page(command), encoding="utf-8")
        terminalreporter.write_line(f"written: {page}")


@pytest.fixture(autouse=True)
def machine_load_in_extra_info(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every benchmark's `extra_info["machine_load"]`: others' CPU use while the test ran
    (harness.measure.machine_load; `noisy` beyond its threshold), unless the test recorded its own
    around just its timed part."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    from harness.measure.machine_load import load_mark, load_since

    benchmark = request.getfixturevalue("benchmark")
    mark = load_mark()
    yield
    benchmark.extra_info.setdefault("machine_load", load_since(mark))


@pytest.fixture(scope="session")
def bench_threads() -> int:
    """The same CPU thread count for every framework ($HARNESS_BENCH_THREADS, default: the
    harness's thread budget, every core this process may use)."""
    from harness.measure.environment import thread_budget

    return bench_int("HARNESS_BENCH_THREADS", thread_budget(None))


def bench_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated environment variable, e.g. HARNESS_BENCH_PROVIDERS=cpu,cuda."""
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def bench_providers() -> list[str]:
    """$HARNESS_BENCH_PROVIDERS: ONNX Runtime providers and framework devices (cpu,cuda)."""
    return bench_list("HARNESS_BENCH_PROVIDERS", ["cpu", "cuda"])


class BenchModels:
    """Models, ONNX files and inputs built once per session and shared by the latency
    benchmarks (exports take seconds; timing them again per test would dominate the suite).

    Weights: with $HARNESS_BENCH_RUNS (a folder of `harness train` / `harness run` outputs) the
    latest run of the same spec and backend, with its test accuracy and loss; otherwise the
    spec's initial weights (accuracy None)."""

    def __init__(self, folder: Path, threads: int, providers: list[str]) -> None:
        self.folder = folder
        self.threads = threads
        self.providers = providers
        self._cache: dict[tuple[str, ...], Any] = {}

    def _cached(self, key: tuple[str, ...], make: Any) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = make()
            except Exception as exc:  # noqa: BLE001 - remembered: every later test skips too
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, Exception):
            raise value
        return value

    def source(self, spec: str, backend: str) -> tuple[Any, dict[str, Any]]:
        """(WeightsSource, {"accuracy", "test_loss"}) for `spec` as trained in `backend`."""
        def make() -> tuple[Any, dict[str, Any]]:
            from harness.export.driver import weights_source
            from harness.records.io import read_json
            from harness.training.runs import find_run

            runs = os.environ.get("HARNESS_BENCH_RUNS")
            run = find_run(Path(runs), spec, backend) if runs else None
            if run is None:
                return weights_source(spec, None), {"accuracy": None, "test_loss": None}
            metrics = read_json(run / "metrics.json")
            return weights_source(spec, run), {"accuracy": metrics.get("test_accuracy"),
                                               "test_loss": metrics.get("test_loss")}
        return self._cached(("source", spec, backend), make)

    def _backend(self, name: str, device: str) -> Any:
        from harness.backends import get_backend

        return self._cached(("backend", name, device),
                            lambda: get_backend(name, device=device, threads=self.threads))

    def built(self, spec: str, backend: str, device: str) -> tuple[Any, Any]:
        """(backend, model with the weights) on `device`; BackendUnavailable (cached) when the
        framework or the device cannot run. Device models are built before the CPU one: Keras'
        CPU backend hides the GPUs from TensorFlow unless its runtime already started."""
        from harness.latency.native import build_model

        if device == "cpu":
            for other in self.providers:
                if other != "cpu":
                    with contextlib.suppress(Exception):  # its own tests report why
                        self.built(spec, backend, other)
        framework = self._backend(backend, device)
        model = self._cached(("model", spec, backend, device), lambda: build_model(
            framework, self.source(spec, backend)[0]))
        return framework, model

    def onnx(self, spec: str, backend: str) -> Path:
        """The backend's ONNX export of the spec (checked), written once."""
        from harness.latency.bench import export_checked

        def make() -> Path:
            path = self.folder / f"{spec}.{backend}.onnx"
            export_checked(*self.built(spec, backend, "cpu"), self.source(spec, backend)[0],
                           path)
            return path
        return self._cached(("onnx", spec, backend), make)

    def inputs(self, spec: str, batch_size: int) -> Any:
        from harness.export.driver import weights_source
        from harness.latency.bench import input_batch

        return self._cached(("inputs", spec, str(batch_size)), lambda: input_batch(
            weights_source(spec, None), batch_size))


@pytest.fixture(scope="session")
def bench_models(tmp_path_factory: pytest.TempPathFactory, bench_threads: int) -> BenchModels:
    return BenchModels(tmp_path_factory.mktemp("bench_onnx"), bench_threads, bench_providers())
