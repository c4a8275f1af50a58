"""The timing protocol on this machine (harness.speed): Keras against PyTorch and each against
ONNX Runtime in interleaved windows, and the A/A comparison (PyTorch against a second copy of
itself) whose interval is the machine's noise floor.

`extra_info["ratios"]` holds, per comparison, the ratio with its 95 % interval and verdict,
and `aa_half_width_percent` the A/A interval's half-width per kind; the rows are printed and
gathered in the suite's summary. Nothing
here fails on a timing.

HARNESS_BENCH_SPECS (default mlp5_bn), HARNESS_BENCH_WINDOWS (default 7),
HARNESS_BENCH_THREADS (the thread budget, as every benchmark).
"""

from __future__ import annotations

import math

import pytest
from conftest import bench_int, bench_specs
from ratios import noise_floors, record_rows, row_line

from harness.backends import not_installed

SPECS = bench_specs(["mlp5_bn"])
WINDOWS = bench_int("HARNESS_BENCH_WINDOWS", 7)


def _half_width_percent(comparisons: list) -> float | None:
    widths = [(c.ratio.ci_high / c.ratio.ci_low) ** 0.5 for c in comparisons]
    return None if not widths else round((max(widths) - 1) * 100, 2)


@pytest.mark.parametrize("spec_name", SPECS)
def test_protocol_with_aa_noise_floor(benchmark, spec_name: str, bench_threads: int,
                                      capsys: pytest.CaptureFixture) -> None:
    from harness.measure.intervals import floor_as_percent
    from harness.measure.protocol import Protocol
    from harness.spec import load_spec
    from harness.speed.spec_timing import SpecTiming, time_spec

    backends = [name for name in ("keras", "torch") if not not_installed(name)]
    if "torch" not in backends:
        pytest.skip("the A/A comparison runs PyTorch: not installed")
    spec = load_spec(spec_name)
    work = SpecTiming(spec, backends, bench_threads, None, spec.train.seed, noise=True)
    benchmark.group = f"speed-protocol:{spec_name}"
    record = benchmark.pedantic(time_spec, args=(work, Protocol(windows=WINDOWS)),
                                kwargs={"log": lambda line: None}, rounds=1, iterations=1)
    rows = record_rows(benchmark, f"{spec_name}: Keras and PyTorch, A/A noise floor", record)
    half_widths = {kind: _half_width_percent(
        [c for c in record.comparisons if c.aa and c.kind == kind])
        for kind in ("training", "native")}
    benchmark.extra_info.update({
        "spec": spec_name, "threads": bench_threads,
        "noise_floor": {kind: floor_as_percent(floor)
                        for kind, floor in noise_floors(record).items()},
        "aa_half_width_percent": half_widths})
    with capsys.disabled():
        print(f"\n{spec_name}: A/A half-width {half_widths}, noise floor "
              f"{benchmark.extra_info['noise_floor']}")
        for row in rows:
            print("  " + row_line(row))
    assert all(math.isfinite(row["ratio"]) for row in rows)
