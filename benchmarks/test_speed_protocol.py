"""The timing protocol on this machine (harness.speed): Keras against PyTorch and each against
ONNX Runtime in interleaved windows, and the A/A comparison (PyTorch against a second copy of
itself) whose interval is the machine's noise floor.

`extra_info` holds, per comparison, the ratio with its 95 % interval and verdict, and the A/A
interval's half-width (`aa_half_width_percent`, per kind); the lines are also printed. Nothing
here fails on a timing.

HARNESS_BENCH_SPECS (default mlp5_bn), HARNESS_BENCH_WINDOWS (default 7),
HARNESS_BENCH_THREADS (the thread budget, as every benchmark).
"""

from __future__ import annotations

import math

import pytest
from conftest import bench_int, bench_specs

from harness.backends import not_installed

SPECS = bench_specs(["mlp5_bn"])
WINDOWS = bench_int("HARNESS_BENCH_WINDOWS", 7)


def _line(comparison, floor: float | None) -> dict:
    from harness.speed.intervals import verdict

    ratio = comparison.ratio
    return {"kind": comparison.kind, "a": comparison.a, "b": comparison.b,
            "batch_size": comparison.batch_size, "ratio": ratio.estimate,
            "ci_low": ratio.ci_low, "ci_high": ratio.ci_high, "n": ratio.n,
            "verdict": "A/A" if comparison.aa else _worded(comparison, verdict(ratio, floor)),
            "busy": comparison.busy}


def _worded(comparison, judged: str) -> str:
    """A time ratio native ÷ ONNX Runtime that is "slower" means ONNX Runtime is faster."""
    if comparison.kind != "onnxruntime" or judged == "within noise":
        return f"{comparison.a} {judged}"
    return f"ONNX Runtime {'faster' if judged == 'slower' else 'slower'}"


def _half_width_percent(comparisons: list) -> float | None:
    widths = [(c.ratio.ci_high / c.ratio.ci_low) ** 0.5 for c in comparisons]
    return None if not widths else round((max(widths) - 1) * 100, 2)


@pytest.mark.parametrize("spec_name", SPECS)
def test_protocol_with_aa_noise_floor(benchmark, spec_name: str, bench_threads: int,
                                      capsys: pytest.CaptureFixture) -> None:
    from harness.spec import load_spec
    from harness.speed.compare import Protocol
    from harness.speed.intervals import floor_as_percent, noise_floor
    from harness.speed.spec_timing import SpecTiming, time_spec

    backends = [name for name in ("keras", "torch") if not not_installed(name)]
    if "torch" not in backends:
        pytest.skip("the A/A comparison runs PyTorch: not installed")
    spec = load_spec(spec_name)
    work = SpecTiming(spec, backends, bench_threads, None, spec.train.seed, noise=True)
    record = benchmark.pedantic(time_spec, args=(work, Protocol(windows=WINDOWS)),
                                kwargs={"log": lambda line: None}, rounds=1, iterations=1)
    floors = {kind: noise_floor([c for c in record.comparisons if c.aa and c.kind == kind])
              for kind in ("training", "native")}
    floors["onnxruntime"] = floors["native"]
    lines = [_line(c, floors[c.kind]) for c in record.comparisons]
    benchmark.extra_info.update({
        "spec": spec_name, "threads": bench_threads, "backends": record.backends,
        "comparisons": lines, "noise_floor": {k: floor_as_percent(v) for k, v in floors.items()},
        "aa_half_width_percent": {kind: _half_width_percent(
            [c for c in record.comparisons if c.aa and c.kind == kind])
            for kind in ("training", "native")}})
    with capsys.disabled():
        print(f"\n{spec_name}: A/A half-width {benchmark.extra_info['aa_half_width_percent']}, "
              f"noise floor {benchmark.extra_info['noise_floor']}")
        for line in lines:
            print(f"  {line['kind']:<11} {line['a']:>8} / {line['b']:<11} batch "
                  f"{line['batch_size']:>3}: {line['ratio']:.3f} [{line['ci_low']:.3f}, "
                  f"{line['ci_high']:.3f}] {line['verdict']}{' (busy)' if line['busy'] else ''}")
    assert all(math.isfinite(line["ratio"]) for line in lines)
