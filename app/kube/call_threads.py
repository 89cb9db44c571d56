"""Worker threads for the official client's blocking calls, answering on the event loop.

What `loop.run_in_executor(ThreadPoolExecutor)` does, for a fraction of its overhead, which
mattered: a grant makes four cluster calls, and at 32 concurrent grants the executor's
machinery (a `concurrent.futures.Future` with its Condition and RLock per call, chained to an
asyncio future through callbacks on both sides) cost more of the event loop's time than any
other part of scangate except the client itself. Here a call is one queue entry; the worker
that ran it sets the asyncio future's outcome with one `call_soon_threadsafe`.

Threads start on demand, up to `max_threads`, and stay (they block on the queue when idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

T = TypeVar("T")

_STOP: Final = object()


def _settle(future: asyncio.Future[Any], ok: bool, outcome: Any) -> None:
    if future.cancelled():
        return  # the caller stopped waiting; the call has run anyway
    if ok:
        future.set_result(outcome)
    else:
        future.set_exception(outcome)


class CallThreads:
    def __init__(self, max_threads: int, *, name: str) -> None:
        self._max_threads = max_threads
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def run(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """Run `call()` in a worker thread; its result (or exception) arrives in the future."""
        if self._closed:
            raise RuntimeError(f"{self._name}: call threads are shut down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        thread = None
        with self._lock:
            if self._idle > 0:
                # A waiting thread takes this call (counted as busy at once, so that calls
                # queued together start as many threads as they need).
                self._idle -= 1
            elif len(self._threads) < self._max_threads:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
            # else: every thread is busy; the call waits in the queue for the first free one.
        if thread is not None:
            thread.start()
        self._queue.put((loop, future, call))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            loop, future, call = item
            try:
                outcome, ok = call(), True
            except BaseException as exc:  # handed to the caller, whatever it is
                outcome, ok = exc, False
            del item, call
            # Idle before the caller hears back, so that its next call finds this thread.
            with self._lock:
                self._idle += 1
            # RuntimeError: the event loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, ok, outcome)
            del future, outcome

    def shutdown(self) -> None:
        """Stop the threads once they finish the calls already queued (without waiting)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(_STOP)
