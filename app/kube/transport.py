"""Runs the official (synchronous) client's calls off the event loop, with bounded retries.

Each cluster gets its own bounded set of threads (`call_threads.py`); the urllib3 connection
pool is sized to match (see `connection.py`) so concurrent calls never queue on a connection.
The client's own urllib3 retries are disabled: retrying here keeps the policy in one place,
makes it honour Retry-After and lets the retry loop sleep on the event loop instead of holding
a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from app.kube.call_threads import CallThreads
from app.kube.error_translation import (
    RETRYABLE_STATUSES,
    api_status,
    is_retryable_tls_failure,
    translate_api_exception,
    translate_transport_error,
)
from app.kube.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    KubeUnavailable,
)
from app.kube.operations import Operation

log = logging.getLogger(__name__)

T = TypeVar("T")

# Connection-level failures: refused, reset, dropped mid-response, timeouts.
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


class CallObserver(Protocol):
    """Told about every attempt at an API request (metrics). Injected by the app so this
    package stays free of metrics code; `error` is None on success, else a short kind
    (`not_found`, `conflict`, `forbidden`, `invalid`, `unavailable`, `connection`, `error`)."""

    def __call__(
        self, *, cluster: str, verb: str, resource: str, seconds: float, error: str | None
    ) -> None: ...


def _error_kind(error: KubeError) -> str:
    for kind, name in (
        (KubeNotFound, "not_found"),
        (KubeConflict, "conflict"),
        (KubeForbidden, "forbidden"),
        (KubeInvalid, "invalid"),
        (KubeUnavailable, "unavailable"),
    ):
        if isinstance(error, kind):
            return name
    return "error"


@dataclass(frozen=True)
class RetryPolicy:
    tries: int = 4
    base_delay: float = 0.2  # seconds before the 2nd try; doubles each time
    max_delay: float = 5.0
    # A Retry-After longer than this is not waited for: the call fails with KubeUnavailable
    # carrying retry_after, so the API can pass it on (503 + Retry-After) instead of hanging.
    max_retry_after: float = 10.0
    # No new try starts once this much time has passed (timeouts included), so a hung API
    # server cannot hold an HTTP request of ours for tries x read_timeout.
    max_elapsed: float = 30.0
    connect_timeout: float = 5.0
    read_timeout: float = 15.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter ("equal jitter"): half fixed, half random, so
        replicas hammered by the same outage do not retry in lockstep."""
        ceiling = min(self.max_delay, self.base_delay * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    @property
    def request_timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


class ClusterTransport:
    """Calls into one cluster's ApiClient: thread pool, timeouts, retries, error translation."""

    def __init__(
        self,
        cluster: str,
        threads: CallThreads,
        policy: RetryPolicy,
        observer: CallObserver | None = None,
    ) -> None:
        self.cluster = cluster
        self.policy = policy
        self._threads = threads
        self._observer = observer

    def _observe(self, operation: Operation, started: float, error: str | None) -> None:
        if self._observer is not None:
            self._observer(
                cluster=self.cluster,
                verb=operation.verb,
                resource=operation.qualified_resource,
                seconds=time.perf_counter() - started,
                error=error,
            )

    async def call(
        self,
        operation: Operation,
        fn: Callable[..., T],
        *args: Any,
        tries: int | None = None,
        on_conflict_after_retry: Callable[[], Awaitable[T | None]] | None = None,
        discard_response: bool = False,
        **kwargs: Any,
    ) -> T:
        """Run `fn(*args, **kwargs)` in the pool; raise only app/kube errors.

        `on_conflict_after_retry` handles a 409 on a retried create: the earlier attempt may have
        succeeded with its response lost, so the caller checks whether the existing object is
        its own and returns a value to count the create as done (or None to fail).

        `discard_response=True` is for calls whose answer is not needed beyond success (creates
        and deletes): the body is read and dropped instead of being decoded into the client's
        models, which costs more CPU than anything else the client does. The result is then
        None. Errors are unaffected: the client still reads their body into the ApiException.
        """
        loop = asyncio.get_running_loop()
        kwargs.setdefault("_request_timeout", self.policy.request_timeout)
        bound: Callable[[], Any] = functools.partial(fn, *args, **kwargs)
        if discard_response:
            bound = functools.partial(_call_discarding_response, bound)
        max_tries = max(1, tries if tries is not None else self.policy.tries)
        started = loop.time()
        attempt = 0
        while True:
            attempt_started = time.perf_counter()
            try:
                result: T = await self._threads.run(bound)
            except ApiException as exc:
                error = translate_api_exception(exc, operation, self.cluster)
                self._observe(operation, attempt_started, _error_kind(error))
                if isinstance(error, KubeConflict) and attempt > 0 and on_conflict_after_retry:
                    existing = await on_conflict_after_retry()
                    if existing is not None:
                        log.info("%s: already created by an earlier try", operation)
                        return existing
                retryable = exc.status in RETRYABLE_STATUSES or (
                    exc.status == 0 and is_retryable_tls_failure(exc)
                )
                if not retryable:
                    raise error from None
                retry_after = api_status(exc).retry_after
                if retry_after is not None and retry_after > self.policy.max_retry_after:
                    raise error from None
                delay = max(retry_after or 0.0, self.policy.backoff(attempt))
                cause = f"HTTP {exc.status}"
            except _TRANSPORT_ERRORS as exc:
                self._observe(operation, attempt_started, "connection")
                error = translate_transport_error(exc, operation, self.cluster)
                delay = self.policy.backoff(attempt)
                cause = type(exc).__name__
            else:
                self._observe(operation, attempt_started, None)
                return result
            attempt += 1
            if attempt >= max_tries or loop.time() - started + delay > self.policy.max_elapsed:
                raise error
            log.warning(
                "%s on cluster %s: %s, try %d/%d, retrying in %.2fs",
                operation, self.cluster, cause, attempt, max_tries, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)


def _call_discarding_response(call: Callable[..., Any]) -> None:
    response = call(_preload_content=False)
    # The connection goes back to the pool only once the body has been read.
    response.drain_conn()
    response.release_conn()
