"""The worker threads of the cluster client's blocking calls: results and exceptions reach the
awaiting task, concurrency is bounded, idle threads are reused, a caller that stops waiting
does not break anything."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from app.kube.call_threads import CallThreads

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_results_and_exceptions_reach_the_caller_from_a_worker_thread() -> None:
    threads = CallThreads(4, name="t")
    try:
        assert await threads.run(lambda: threading.current_thread().name) == "t-0"

        def fail() -> None:
            raise ValueError("from the thread")

        with pytest.raises(ValueError, match="from the thread"):
            await threads.run(fail)
    finally:
        threads.shutdown()


async def test_concurrency_is_bounded_by_the_thread_count() -> None:
    threads = CallThreads(3, name="t")
    lock = threading.Lock()
    running, most = [0], [0]

    def call() -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return threading.current_thread().name

    try:
        names = await asyncio.gather(*(threads.run(call) for _ in range(12)))
    finally:
        threads.shutdown()
    assert most[0] == 3
    assert set(names) == {"t-0", "t-1", "t-2"}


async def test_sequential_calls_reuse_one_idle_thread() -> None:
    threads = CallThreads(8, name="t")
    try:
        names = {await threads.run(lambda: threading.current_thread().name) for _ in range(20)}
    finally:
        threads.shutdown()
    assert names == {"t-0"}


async def test_a_caller_that_stops_waiting_leaves_the_threads_working() -> None:
    threads = CallThreads(1, name="t")
    release = threading.Event()
    ran = threading.Event()

    def slow() -> None:
        release.wait(5)
        ran.set()

    try:
        waiting = asyncio.ensure_future(threads.run(slow))
        await asyncio.sleep(0.01)
        waiting.cancel()
        release.set()
        # The cancelled call still ran, and the one thread takes the next call.
        assert await threads.run(lambda: 42) == 42
        assert ran.is_set()
    finally:
        threads.shutdown()


async def test_no_call_is_accepted_after_shutdown() -> None:
    threads = CallThreads(2, name="t")
    assert await threads.run(lambda: 1) == 1
    threads.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        threads.run(lambda: 2)
