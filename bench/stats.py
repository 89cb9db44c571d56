"""Latency samples and their summaries."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0..1) by linear interpolation between closest ranks (numpy's
    default), so p99 of 300 samples is not simply the 3rd-largest value."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Latencies:
    """Seconds per operation, and the wall time the whole batch took."""

    samples: tuple[float, ...]
    wall_seconds: float

    @classmethod
    def merge(cls, parts: Sequence[Latencies]) -> Latencies:
        return cls(
            samples=tuple(s for part in parts for s in part.samples),
            wall_seconds=sum(part.wall_seconds for part in parts),
        )

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def p50(self) -> float:
        return percentile(self.samples, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 0.99)

    @property
    def max(self) -> float:
        return max(self.samples) if self.samples else math.nan

    @property
    def throughput(self) -> float:
        """Operations per second over the batch's wall time."""
        return self.count / self.wall_seconds if self.wall_seconds > 0 else math.nan

    def summary_ms(self) -> dict[str, float]:
        return {
            "n": self.count,
            "p50_ms": round(self.p50 * 1000, 3),
            "p99_ms": round(self.p99 * 1000, 3),
            "max_ms": round(self.max * 1000, 3),
        }


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) process `pid` has used so far: Linux's
    /proc/PID/stat (fields 14 and 15, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) is in parentheses and may contain spaces.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
