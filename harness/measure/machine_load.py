"""How busy the machine was while something was timed: other processes' CPU use, from /proc.

A timing taken while another heavy job shared the cores is not a property of the code timed.
Each measurement (a training epoch, a latency loop) takes a `LoadMark` before it and calls
`load_since` after it: two reads of /proc/stat and /proc/self/stat, no sampler thread. Over
the interval,

    others_cores = (busy jiffies of all CPUs - this process's own jiffies) / elapsed jiffies

averaged over the interval and expressed in cores (0.5 = half a core kept busy by others).
"Own" is this process (all its threads) plus its children that have exited and been waited
for; a child still running counts as another process. A measurement is `noisy` when others
used more than NOISY_OTHERS_CORES on average. The 1-minute load average is recorded beside it
(it counts this process too, so it does not decide).

Elsewhere than Linux, or when /proc cannot be read, or over an interval shorter than the
kernel's accounting can resolve (MIN_INTERVAL_SECONDS), the load is unknown: `others_cores` is
None and the measurement is not flagged. GPU contention is not seen here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOISY_OTHERS_CORES = 0.25  # others' average use, in cores, above which a timing is noisy
# Jiffies are 10 ms ticks on most kernels: below ~20 ticks per core one tick more or less
# would move others_cores by more than the threshold's margin.
MIN_INTERVAL_SECONDS = 0.2
PROC_STAT = Path("/proc/stat")
PROC_SELF_STAT = Path("/proc/self/stat")
# /proc/stat "cpu" columns: user nice system idle iowait irq softirq steal (guest and
# guest_nice are already inside user and nice). Steal is busy: another guest had the core.
_IDLE_COLUMNS = (3, 4)
_COUNTED_COLUMNS = 8
# /proc/self/stat fields after the ")" that ends the command name: utime, stime, cutime,
# cstime are fields 14-17 of the whole line, i.e. positions 11-14 after it.
_OWN_FIELDS = slice(11, 15)


@dataclass(frozen=True)
class CpuTicks:
    """CPU accounting at one instant, in jiffies since boot."""

    busy: int  # all CPUs, not idle or waiting for IO
    total: int  # all CPUs, every state
    own: int  # this process and its waited-for children
    cpus: int  # CPUs in the accounting


@dataclass(frozen=True)
class LoadMark:
    """The start of a measured interval."""

    wall: float  # time.perf_counter()
    ticks: CpuTicks | None  # None: /proc unreadable (not Linux)


def parse_ticks(proc_stat: str, proc_self_stat: str) -> CpuTicks:
    """CpuTicks from the text of /proc/stat and /proc/self/stat; ValueError if malformed."""
    lines = proc_stat.splitlines()
    head = lines[0].split() if lines else []
    if not head or head[0] != "cpu" or len(head) < 1 + _COUNTED_COLUMNS:
        raise ValueError("/proc/stat: the first line is not the aggregate 'cpu' line")
    counts = [int(value) for value in head[1:1 + _COUNTED_COLUMNS]]
    idle = sum(counts[i] for i in _IDLE_COLUMNS)
    cpus = sum(1 for line in lines[1:] if line.startswith("cpu") and line[3:4].isdigit())
    fields = proc_self_stat.rpartition(")")[2].split()
    own_fields = fields[_OWN_FIELDS]
    if len(own_fields) != 4:
        raise ValueError("/proc/self/stat: too few fields after the command name")
    return CpuTicks(busy=sum(counts) - idle, total=sum(counts),
                    own=sum(int(value) for value in own_fields), cpus=max(cpus, 1))


def read_ticks() -> CpuTicks | None:
    """This instant's CpuTicks, or None where /proc is missing or unreadable."""
    try:
        return parse_ticks(PROC_STAT.read_text(), PROC_SELF_STAT.read_text())
    except (OSError, ValueError):
        return None


def load_average() -> float | None:
    """The 1-minute load average (this process included), None where unknown."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def load_mark() -> LoadMark:
    """Call right before the measurement starts."""
    return LoadMark(wall=time.perf_counter(), ticks=read_ticks())


def judge(start: CpuTicks | None, end: CpuTicks | None, seconds: float,
          load_average_1m: float | None) -> dict[str, Any]:
    """The JSON-ready load record of an interval of `seconds` between two readings."""
    others: float | None = None
    usable = (start is not None and end is not None and seconds >= MIN_INTERVAL_SECONDS
              and end.total > start.total)
    if usable:
        others_ticks = (end.busy - start.busy) - (end.own - start.own)
        # a child reaped during the interval brings all its earlier time with it: clamp at 0
        others = max(others_ticks, 0) / (end.total - start.total) * end.cpus
    return {
        "others_cores": others,
        "cores": end.cpus if end is not None else None,
        "seconds": seconds,
        "load_average_1m": load_average_1m,
        "threshold_cores": NOISY_OTHERS_CORES,
        "noisy": others is not None and others > NOISY_OTHERS_CORES,
    }


def load_since(mark: LoadMark) -> dict[str, Any]:
    """The load record of the interval since `mark` (see the module docstring)."""
    end = read_ticks()
    seconds = time.perf_counter() - mark.wall
    return judge(mark.ticks, end, seconds, load_average())


def is_noisy(record: Any) -> bool:
    """True only for a load record that says noisy; None, old or foreign records are not."""
    return isinstance(record, dict) and record.get("noisy") is True


def noisy_note() -> str:
    """What the noisy marker means, for reports and printed tables."""
    return (f"measured while other processes used more than {NOISY_OTHERS_CORES:g} of a CPU "
            "core on average (a busy machine), so it likely overstates what the code needs")
