"""Timing that holds on a busy machine: enough work per repetition, interleaved repetitions,
medians with their spread, and CPU time next to wall time.

One scheduler stall on a loaded 2-core machine can turn a 50 ms measurement into 4 s. So each
contender does at least ``min_seconds`` of work per repetition (its unit of work repeated),
the contenders take turns within every repetition (the order rotating), and a figure is the
median over repetitions with its range and interquartile range. A ratio is the median of the
per-repetition ratios (paired within a repetition, so a slow spell hits both sides). CPU time
counts this process and its live worker processes (DataLoader workers, packed jobs): time spent
preempted by other users of the machine is not in it, so ratios of compute are steadier in CPU
time than in wall time.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

#: Least seconds of work in one repetition of a figure.
MIN_SECONDS = 1.0
#: Least repetitions of a figure.
REPETITIONS = 5


def _child_cpu_seconds() -> float:
    """CPU seconds of this process's live multiprocessing children (Linux; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for child in mp.active_children():
        try:
            stat = Path(f"/proc/{child.pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def ended_children_cpu_seconds() -> float:
    """CPU seconds, user plus system, of this process's child processes that have ended."""
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ended.ru_utime + ended.ru_stime


def cpu_seconds() -> float:
    """Process CPU time, all threads, plus that of its worker processes, live or ended."""
    return time.process_time() + ended_children_cpu_seconds() + _child_cpu_seconds()


@dataclass
class Spread:
    """A figure's repetitions: median, range and interquartile range."""

    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def low(self) -> float:
        return min(self.runs)

    @property
    def high(self) -> float:
        return max(self.runs)

    @property
    def iqr(self) -> tuple[float, float]:
        if len(self.runs) < 2:
            return self.runs[0], self.runs[0]
        q1, _, q3 = statistics.quantiles(self.runs, n=4, method="inclusive")
        return q1, q3

    def to_dict(self) -> dict[str, float | list[float]]:
        q1, q3 = self.iqr
        return {
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "q1": q1,
            "q3": q3,
            "runs": self.runs,
        }

    def text(self, fmt: str = ".3g", unit: str = "") -> str:
        """``1.23 s (1.10-1.40, n=5)``: the median, then min-max over the repetitions."""
        if len(self.runs) == 1:
            return f"{self.median:{fmt}}{unit} (one run)"
        return f"{self.median:{fmt}}{unit} ({self.low:{fmt}}-{self.high:{fmt}}, n={len(self.runs)})"

    def __truediv__(self, other: Spread) -> Spread:
        """Per-repetition ratios (paired)."""
        return Spread([a / b for a, b in zip(self.runs, other.runs, strict=True)])


def inverse(spread: Spread, amount: float = 1.0) -> Spread:
    """``amount / x`` per repetition: seconds per unit -> units per second."""
    return Spread([amount / x for x in spread.runs])


@dataclass
class Timed:
    """Seconds per unit of work of one contender, per repetition, on both clocks."""

    wall: Spread
    cpu: Spread
    units: int  # units of work per repetition
    extra: dict[str, Spread] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"wall_s": self.wall.to_dict(), "cpu_s": self.cpu.to_dict(), "units": self.units}
        out.update({k: v.to_dict() for k, v in self.extra.items()})
        return out


def interleaved(
    contenders: dict[str, Callable[[], object]],
    repetitions: int = REPETITIONS,
    min_seconds: float = MIN_SECONDS,
    sync: Callable[[], None] = lambda: None,
) -> dict[str, Timed]:
    """Time each contender's unit of work, repeated to fill ``min_seconds`` per repetition.

    Each contender runs once first (warm-up and calibration: how many units fill
    ``min_seconds``), then every repetition runs each contender's units in turn, the order
    rotating. ``sync`` waits for queued device work (``torch.cuda.synchronize``).
    """
    names = list(contenders)
    units = {}
    for name in names:
        sync()
        start = time.perf_counter()
        contenders[name]()
        sync()
        units[name] = max(1, math.ceil(min_seconds / max(time.perf_counter() - start, 1e-9)))
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repetitions):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            sync()
            w, c = time.perf_counter(), cpu_seconds()
            for _ in range(units[name]):
                contenders[name]()
            sync()
            wall[name].append((time.perf_counter() - w) / units[name])
            cpu[name].append((cpu_seconds() - c) / units[name])
    return {n: Timed(Spread(wall[n]), Spread(cpu[n]), units[n]) for n in names}


@contextmanager
def one_thread(on: bool = True) -> Iterator[None]:
    """torch on one CPU thread inside the block (``on``), restored after.

    On a CPU shared with other work, a parallel region whose partner thread is descheduled
    spins: its CPU time grows with the machine's load (a later epoch of 240 cached images took
    2 s of CPU instead of 0.03 s on a loaded 2-core machine). One thread keeps CPU time a
    measure of work, so ratios of compute hold; absolute times are then one core's.
    """
    before = torch.get_num_threads()
    if on:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS count of this process (Linux); False when unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_gb(field: str) -> float | None:
    """A memory line of /proc/self/status (``VmRSS``, ``VmHWM``) in GB; None without /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def rss_gb() -> float:
    """Resident memory of this process now, in GB (0 where /proc is missing)."""
    return _status_gb("VmRSS") or 0.0


def peak_rss_gb() -> float:
    """Peak resident memory of this process in GB: since :func:`reset_peak_rss` where the
    kernel supports it (``VmHWM``), else since the process started."""
    peak = _status_gb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1e9 if sys.platform == "darwin" else maxrss * 1024 / 1e9
