"""The request-path stage: POST /v1/grants at concurrency 1 and at high concurrency, GET
kubeconfig and POST revoke, each measured for scangate and for the floor in alternating rounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bench.floor import EventLoopFloor, Floor, FloorGrant
from bench.load import run_async, run_threads
from bench.plan import Plan
from bench.service import ScangateClient
from bench.stats import Latencies, ratio


@dataclass
class Comparison:
    """One measurement for scangate and for the floor."""

    scangate: list[Latencies] = field(default_factory=list)
    floor: list[Latencies] = field(default_factory=list)
    # CPU seconds each side's process spent on its rounds (measured for some comparisons).
    scangate_cpu_s: list[float] = field(default_factory=list)
    floor_cpu_s: list[float] = field(default_factory=list)

    @property
    def scangate_all(self) -> Latencies:
        return Latencies.merge(self.scangate)

    @property
    def floor_all(self) -> Latencies:
        return Latencies.merge(self.floor)

    def cpu_ms_per_operation(self) -> dict[str, float] | None:
        if not self.scangate_cpu_s or not self.floor_cpu_s:
            return None
        ours, floor = self.scangate_all.count, self.floor_all.count
        return {
            "scangate": round(sum(self.scangate_cpu_s) / ours * 1000, 3),
            "floor": round(sum(self.floor_cpu_s) / floor * 1000, 3),
        }

    def report(self) -> dict[str, Any]:
        ours, floor = self.scangate_all, self.floor_all
        return {
            "scangate": ours.summary_ms(),
            "floor": floor.summary_ms(),
            "p50_ratio": round(ratio(ours.p50, floor.p50), 3),
            "p99_ratio": round(ratio(ours.p99, floor.p99), 3),
            "scangate_per_s": round(ours.throughput, 1),
            "floor_per_s": round(floor.throughput, 1),
            "throughput_ratio": round(ratio(ours.throughput, floor.throughput), 3),
        }


@dataclass
class EventLoopReference:
    """The floor's grants sent from an event loop as scangate sends them (`EventLoopFloor`)."""

    c1: list[Latencies] = field(default_factory=list)
    concurrent: list[Latencies] = field(default_factory=list)
    concurrent_cpu_s: list[float] = field(default_factory=list)

    def report(self, post_c1: Comparison, post_concurrent: Comparison) -> dict[str, Any]:
        c1, concurrent = Latencies.merge(self.c1), Latencies.merge(self.concurrent)
        ours_c1, ours_concurrent = post_c1.scangate_all, post_concurrent.scangate_all
        return {
            "post_c1_p50_ms": round(c1.p50 * 1000, 3),
            "throughput_c32_per_s": round(concurrent.throughput, 1),
            "cpu_ms_per_grant_c32": round(sum(self.concurrent_cpu_s) / concurrent.count * 1000, 3),
            "post_p50_ratio_c1": round(ratio(ours_c1.p50, c1.p50), 3),
            "throughput_ratio_c32": round(
                ratio(ours_concurrent.throughput, concurrent.throughput), 3
            ),
        }


@dataclass
class RequestResults:
    concurrency: int
    post_c1: Comparison = field(default_factory=Comparison)
    post_concurrent: Comparison = field(default_factory=Comparison)
    kubeconfig: Comparison = field(default_factory=Comparison)
    revoke: Comparison = field(default_factory=Comparison)
    event_loop_floor: EventLoopReference = field(default_factory=EventLoopReference)


def _shares(total: int, rounds: int) -> list[int]:
    base, extra = divmod(total, rounds)
    return [base + (1 if index < extra else 0) for index in range(rounds)]


async def _both(
    comparison: Comparison,
    scangate: Callable[[], Awaitable[tuple[Latencies, list[Any]]]],
    floor: Callable[[], tuple[Latencies, list[Any]]],
    *,
    floor_first: bool,
    scangate_cpu: Callable[[], float] | None = None,
) -> tuple[list[Any], list[Any]]:
    """Run one round of each side, in the given order (alternated between rounds so that
    neither side always runs on the warmer, or the busier, machine).

    With `scangate_cpu` (the server process's CPU seconds so far), the CPU each side used is
    recorded too: scangate's process, and this one while the floor ran (the floor's threads;
    the benchmark's event loop is idle meanwhile)."""

    async def ours_round() -> tuple[Latencies, list[Any]]:
        before = scangate_cpu() if scangate_cpu else 0.0
        outcome = await scangate()
        if scangate_cpu:
            comparison.scangate_cpu_s.append(scangate_cpu() - before)
        return outcome

    async def floor_round() -> tuple[Latencies, list[Any]]:
        before = time.process_time()
        outcome = await asyncio.to_thread(floor)
        if scangate_cpu:
            comparison.floor_cpu_s.append(time.process_time() - before)
        return outcome

    if floor_first:
        floor_latencies, floor_results = await floor_round()
        ours, our_results = await ours_round()
    else:
        ours, our_results = await ours_round()
        floor_latencies, floor_results = await floor_round()
    comparison.scangate.append(ours)
    comparison.floor.append(floor_latencies)
    return our_results, floor_results


async def _event_loop_round(
    floor: EventLoopFloor, concurrency: int, n: int, cpu_s: list[float] | None = None
) -> Latencies:
    before = time.process_time()
    latencies, _ = await run_async(concurrency, range(n), floor.grant)
    if cpu_s is not None:
        cpu_s.append(time.process_time() - before)
    return latencies


async def measure_requests(
    plan: Plan,
    scangate: ScangateClient,
    floor: Floor,
    event_loop_floor: EventLoopFloor,
    scangate_cpu: Callable[[], float],
) -> RequestResults:
    results = RequestResults(concurrency=plan.concurrency)
    reference = results.event_loop_floor
    c = plan.concurrency

    async def create(_: int) -> str:
        return await scangate.create_grant()

    # Connections, thread pools, first-use imports and caches on every side.
    await run_async(c, range(plan.warmup), create)
    await asyncio.to_thread(run_threads, c, range(plan.warmup), floor.grant)
    await _event_loop_round(event_loop_floor, c, plan.warmup)

    # One at a time first, then concurrently: the aftermath of a burst of 32 (a database
    # checkpoint or vacuum, garbage collection) must not land in the single-caller figures.
    our_grants: list[str] = []
    floor_grants: list[FloorGrant] = []
    for index, n in enumerate(_shares(plan.post_c1, plan.rounds)):
        ours, theirs = await _both(
            results.post_c1,
            partial(run_async, 1, range(n), create),
            partial(run_threads, 1, range(n), floor.grant),
            floor_first=index % 2 == 1,
        )
        our_grants += ours
        floor_grants += theirs
        # The reference between rounds of the comparison, so it sees the same conditions.
        reference.c1.append(await _event_loop_round(event_loop_floor, 1, n))
    for index, n in enumerate(_shares(plan.post_concurrent, plan.rounds)):
        await _both(
            results.post_concurrent,
            partial(run_async, c, range(n), create),
            partial(run_threads, c, range(n), floor.grant),
            floor_first=index % 2 == 0,
            scangate_cpu=scangate_cpu,
        )
        reference.concurrent.append(
            await _event_loop_round(event_loop_floor, c, n, reference.concurrent_cpu_s)
        )

    # Sequential kubeconfig fetches, then revocations, of grants made above.
    for index, (lo, hi) in enumerate(_ranges(plan.kubeconfig, plan.rounds)):
        await _both(
            results.kubeconfig,
            partial(run_async, 1, our_grants[lo:hi], scangate.kubeconfig),
            partial(run_threads, 1, floor_grants[lo:hi], floor.kubeconfig),
            floor_first=index % 2 == 1,
        )
    for index, (lo, hi) in enumerate(_ranges(plan.revoke, plan.rounds)):
        await _both(
            results.revoke,
            partial(run_async, 1, our_grants[lo:hi], scangate.revoke),
            partial(run_threads, 1, floor_grants[lo:hi], floor.revoke),
            floor_first=index % 2 == 0,
        )
    return results


def _ranges(total: int, rounds: int) -> list[tuple[int, int]]:
    bounds: list[tuple[int, int]] = []
    start = 0
    for share in _shares(total, rounds):
        bounds.append((start, start + share))
        start += share
    return bounds
