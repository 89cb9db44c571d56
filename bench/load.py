"""Closed-loop load: `concurrency` callers, each starting its next operation as soon as its last
one finished, until `count` operations are done. One runner for asyncio operations (scangate
over HTTP) and one for blocking ones in threads (the floor, with the synchronous client)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from bench.stats import Latencies

T = TypeVar("T")
R = TypeVar("R")


async def run_async(
    concurrency: int,
    items: Sequence[T],
    operation: Callable[[T], Awaitable[R]],
) -> tuple[Latencies, list[R]]:
    """Apply `operation` to every item, `concurrency` at a time; latencies in item order."""
    latencies = [0.0] * len(items)
    results: list[R | None] = [None] * len(items)
    indexes = iter(range(len(items)))

    async def caller() -> None:
        for index in indexes:
            started = time.perf_counter()
            results[index] = await operation(items[index])
            latencies[index] = time.perf_counter() - started

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(min(concurrency, len(items)))))
    wall = time.perf_counter() - started
    return Latencies(tuple(latencies), wall), [r for r in results if r is not None]


def run_threads(
    concurrency: int,
    items: Sequence[T],
    operation: Callable[[T], R],
) -> tuple[Latencies, list[R]]:
    """The same in `concurrency` threads, for blocking operations."""
    latencies = [0.0] * len(items)
    results: list[R | None] = [None] * len(items)
    counter = itertools.count()
    lock = threading.Lock()

    def caller() -> None:
        while True:
            with lock:
                index = next(counter)
            if index >= len(items):
                return
            started = time.perf_counter()
            results[index] = operation(items[index])
            latencies[index] = time.perf_counter() - started

    workers = min(concurrency, len(items))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-caller") as pool:
        for future in [pool.submit(caller) for _ in range(workers)]:
            future.result()
    wall = time.perf_counter() - started
    return Latencies(tuple(latencies), wall), [r for r in results if r is not None]
