"""harness.measure.machine_load: others' CPU use over a measured interval, and the `noisy` flag on
timings (latency loops, training epochs, `harness bench` output).

The flag logic is tested with injected /proc readings: this machine is shared, so a real
"quiet" measurement cannot be promised. Real busy detection uses CPU burners on every core.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.latency import bench
from harness.latency import records as bench_records
from harness.measure import machine_load
from harness.measure.machine_load import (
    CpuTicks,
    is_noisy,
    judge,
    load_mark,
    load_since,
    parse_ticks,
)
from harness.measure.timing import measure

# user nice system idle iowait irq softirq steal guest guest_nice: guest is inside user
PROC_STAT = ("cpu  100 5 20 300 10 1 2 3 50 0\ncpu0 50 5 10 150 5 1 1 2 25 0\n"
             "cpu1 50 0 10 150 5 0 1 1 25 0\nintr 12345 0 0\nctxt 999\n")
# a command name with ") " inside: fields are counted from the last ")"
SELF_STAT = "4242 (odd ) name) S 1 4242 4242 0 -1 4194304 99 0 0 0 7 3 11 13 20 0 1 0 30764"
BURN_SECONDS = 30  # a burner stops by itself even if the test process dies


def ticks(busy: int, total: int, own: int) -> CpuTicks:
    return CpuTicks(busy=busy, total=total, own=own, cpus=2)


START = ticks(busy=1_000, total=5_000, own=100)


def after_one_second(others: int, own: int) -> CpuTicks:
    """START + 1 s on 2 cores at 100 ticks/s: `own` ticks ours, `others` someone else's."""
    return ticks(busy=START.busy + own + others, total=START.total + 200, own=START.own + own)


def test_parse_ticks_reads_busy_total_own_and_cores() -> None:
    parsed = parse_ticks(PROC_STAT, SELF_STAT)
    assert parsed.busy == 100 + 5 + 20 + 1 + 2 + 3  # idle and iowait are not busy
    assert parsed.total == 100 + 5 + 20 + 300 + 10 + 1 + 2 + 3
    assert parsed.own == 7 + 3 + 11 + 13  # utime, stime, cutime, cstime
    assert parsed.cpus == 2


@pytest.mark.parametrize(("proc_stat", "self_stat", "message"), [
    ("intr 12345 0 0\n", SELF_STAT, "aggregate 'cpu' line"),
    ("", SELF_STAT, "aggregate 'cpu' line"),
    ("cpu  1 2 3\n", SELF_STAT, "aggregate 'cpu' line"),
    (PROC_STAT, "4242 (python) S 1 2", "too few fields"),
])
def test_malformed_proc_text_is_an_error(proc_stat: str, self_stat: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ticks(proc_stat, self_stat)


@pytest.mark.parametrize(("others", "own", "cores", "noisy"), [
    (10, 100, 0.1, False),   # a quiet machine while we keep one core busy
    (0, 200, 0.0, False),    # our own work on both cores is not "others"
    (25, 50, 0.25, False),   # exactly at the threshold: not beyond it
    (26, 50, 0.26, True),
    (100, 100, 1.0, True),   # another job took a whole core
])
def test_others_cores_and_the_noisy_threshold(others: int, own: int, cores: float,
                                              noisy: bool) -> None:
    record = judge(START, after_one_second(others, own), 1.0, 0.5)
    assert record["others_cores"] == pytest.approx(cores)
    assert record["noisy"] is noisy
    assert record["threshold_cores"] == machine_load.NOISY_OTHERS_CORES == 0.25
    assert (record["cores"], record["seconds"], record["load_average_1m"]) == (2, 1.0, 0.5)


def test_a_child_reaped_during_the_interval_never_makes_others_negative() -> None:
    end = ticks(busy=START.busy + 50, total=START.total + 200, own=START.own + 400)
    assert judge(START, end, 1.0, None)["others_cores"] == 0.0


@pytest.mark.parametrize(("start", "end", "seconds"), [
    (None, after_one_second(100, 0), 1.0),  # /proc unreadable at the start
    (START, None, 1.0),                      # ... or at the end
    (START, after_one_second(100, 0), 0.05),  # too short for 10 ms accounting
    (START, START, 1.0),                     # no ticks elapsed
])
def test_unknown_load_is_recorded_as_unknown_and_not_flagged(
        start: CpuTicks | None, end: CpuTicks | None, seconds: float) -> None:
    record = judge(start, end, seconds, None)
    assert record["others_cores"] is None and record["noisy"] is False


def test_without_proc_the_load_is_unknown(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setattr(machine_load, "PROC_STAT", tmp_path / "no-such-file")
    assert machine_load.read_ticks() is None
    mark = load_mark()
    assert mark.ticks is None
    record = load_since(mark)
    assert record["others_cores"] is None and record["noisy"] is False


@pytest.mark.parametrize(("record", "noisy"), [
    (None, False), ({}, False), ({"noisy": "yes"}, False), ({"noisy": False}, False),
    ("noisy", False), ({"noisy": True}, True),
])
def test_is_noisy_trusts_only_a_true_flag(record: Any, noisy: bool) -> None:
    assert is_noisy(record) is noisy


def scripted(monkeypatch: pytest.MonkeyPatch, readings: list[CpuTicks]) -> Iterator[CpuTicks]:
    """read_ticks returns `readings` in order; any interval is long enough to judge."""
    queue = iter(readings)
    monkeypatch.setattr(machine_load, "read_ticks", lambda: next(queue))
    monkeypatch.setattr(machine_load, "MIN_INTERVAL_SECONDS", 0.0)
    return queue


def test_measure_records_the_load_of_its_timed_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = measure(lambda: None, batch_size=1, warmup=0, min_runs=3, min_seconds=0.0)
    assert set(quiet.machine_load) == {"others_cores", "cores", "seconds", "load_average_1m",
                                       "threshold_cores", "noisy"}
    scripted(monkeypatch, [START, after_one_second(others=4, own=100)])
    quiet = measure(lambda: None, batch_size=1, warmup=0, min_runs=3, min_seconds=0.0)
    assert quiet.machine_load["others_cores"] == pytest.approx(0.04)
    assert quiet.as_dict()["machine_load"]["noisy"] is False
    scripted(monkeypatch, [START, after_one_second(others=120, own=80)])
    busy = measure(lambda: None, batch_size=1, warmup=0, min_runs=3, min_seconds=0.0)
    assert busy.as_dict()["machine_load"]["noisy"] is True


@pytest.fixture()
def burners() -> Iterator[list[subprocess.Popen]]:
    """A busy loop on every core, killed afterwards (and ending by itself in any case)."""
    code = f"import time\nend = time.time() + {BURN_SECONDS}\nwhile time.time() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 2)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="Linux /proc accounting only")
def test_a_measurement_beside_cpu_burners_is_noisy(burners: list[subprocess.Popen]) -> None:
    time.sleep(0.3)  # the burners' interpreters start up
    stats = measure(lambda: time.sleep(0.01), batch_size=1, warmup=0, min_runs=1,
                    min_seconds=0.6)
    assert all(proc.poll() is None for proc in burners)  # still burning when measured
    load = stats.machine_load
    assert load["noisy"] is True and load["others_cores"] > machine_load.NOISY_OTHERS_CORES


def test_training_records_each_epochs_load(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from harness.training import TrainConfig, train_and_evaluate

    second_start = after_one_second(others=5, own=100)
    scripted(monkeypatch, [START, second_start,  # epoch 1: quiet
                           second_start, ticks(busy=second_start.busy + 200,  # epoch 2: busy
                                               total=second_start.total + 200,
                                               own=second_start.own + 20)])
    config = TrainConfig(backend="torch", epochs=2, limit=256, limit_test=64, threads=2)
    history = train_and_evaluate("mlp2", config, out_dir=tmp_path).metrics["history"]
    assert [epoch["machine_load"]["noisy"] for epoch in history] == [False, True]
    assert history[1]["machine_load"]["others_cores"] == pytest.approx(1.8)


def latency_record(runtime: str, mode: str, p50: float, noisy: bool) -> dict[str, Any]:
    return {"runtime": runtime, "backend": "torch", "provider": "cpu", "batch_size": 1,
            "mode": mode, "status": "ok", "provider_used": "cpu",
            "stats": {"p50_ms": p50, "p90_ms": p50, "throughput": 1e3 / p50,
                      "machine_load": {"others_cores": 1.5 if noisy else 0.0, "noisy": noisy}}}


def test_bench_output_marks_busy_figures() -> None:
    records = [latency_record("native", "native", 2.0, noisy=False),
               latency_record("onnxruntime", "session_run", 0.5, noisy=True)]
    result = {"spec": {"name": "mlp2"}, "records": records, "speedups": bench.speedups(records)}
    assert [s["noisy"] for s in result["speedups"]] == [True]  # either side noisy
    native, ort = bench_records.summary_rows(result)
    assert not any(bench_records.BUSY_MARK in cell for cell in native)
    assert ort[-4:] == ["0.500 (busy)", "0.500 (busy)", "2,000 (busy)", "4.00x (busy)"]
    (line,) = bench_records.problems(result)
    assert line.startswith("1 measurement(s) marked (busy)") and "0.25" in line
    quiet = [latency_record("native", "native", 2.0, noisy=False)]
    assert bench_records.problems({"records": quiet}) == []
