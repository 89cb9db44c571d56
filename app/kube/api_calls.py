"""One cluster's API calls: timeouts, bounded retries and translation into app/kube's errors.

The official client's asyncio `ApiClient` (`kubernetes.aio`) builds each request (URL, query,
authentication, refreshing the token first when its loader installed a hook), sends it from
the event loop over its aiohttp pool with the TLS and proxy settings of its Configuration,
raises its `ApiException` for an answer other than 2xx, and decodes answers into its models.
The client's own retries are not used: retrying here keeps the policy in one place and makes
it honour Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiohttp
from kubernetes.aio.client import ApiClient
from kubernetes.aio.client.exceptions import ApiException, ApiValueError

from app.kube.client_config import ClusterConfig
from app.kube.error_translation import (
    RETRYABLE_STATUSES,
    api_status,
    translate_api_exception,
    translate_certificate_error,
    translate_transport_error,
    translate_undecodable_answer,
)
from app.kube.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeInvalid,
    KubeMalformedResponse,
    KubeNotFound,
    KubeUnavailable,
)
from app.kube.operations import Operation

# What the API server is called with: the Configuration's bearer token (client certificates,
# when configured, are part of TLS).
_AUTH_SETTINGS: Final = ["BearerToken"]
_JSON: Final = "application/json"
_SUCCESS_STATUSES: Final = ("200", "201", "202")

# Connection-level failures worth another try: refused, reset, dropped mid-response, timeouts.
TRANSPORT_ERRORS: Final = (aiohttp.ClientError, ConnectionError, TimeoutError)
# A certificate that does not verify will not verify on the next try either.
CERTIFICATE_ERRORS: Final = (aiohttp.ClientConnectorCertificateError,)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiRequest:
    operation: Operation
    query: tuple[tuple[str, str | int], ...] = ()
    body: dict[str, Any] | None = None
    # The client model the answer decodes into ("V1Pod", or "object" for plain JSON); None:
    # the answer is read and dropped (creates and deletes), which spares the CPU of building
    # models nobody reads.
    returns: str | None = None


# Sends one request with (connect, read) timeouts; its decoded answer.
Send = Callable[[ApiRequest, tuple[float, float]], Awaitable[Any]]


def open_api_client(config: ClusterConfig, *, max_connections: int) -> ApiClient:
    """The client of one cluster. Its connection pool is opened by the first request, in
    the event loop that sends it, and belongs to that loop."""
    configuration = config.configuration
    configuration.connection_pool_maxsize = max_connections
    configuration.retries = None  # retried here, by `ClusterApi`
    # aiohttp's `trust_env` (the client's default) looks up ~/.netrc and the proxy environment
    # in a worker thread on every request: two thread hand-offs per call, the cost the event
    # loop is used to avoid. The environment's proxy is applied once instead (`client_config`).
    configuration.client_session_kwargs = {"trust_env": False}
    return ApiClient(configuration=configuration)


def sender(api_client: ApiClient) -> Send:
    """Sends requests through `api_client`: raises its `ApiException` for an answer other than
    2xx, aiohttp's (or the socket's) errors when the API server cannot be reached, and
    `ValueError` (pydantic's `ValidationError`, a JSON error) when the answer does not decode
    into the expected model."""

    async def send(request: ApiRequest, timeouts: tuple[float, float]) -> Any:
        operation = request.operation
        method, url, headers, body, _ = await api_client.param_serialize(
            operation.http_method,
            operation.path,
            query_params=list(request.query) or None,
            header_params={"Accept": _JSON, "Content-Type": _JSON},
            body=request.body,
            auth_settings=_AUTH_SETTINGS,
        )
        connect, read = timeouts
        response = await api_client.call_api(
            method,
            url,
            header_params=headers,
            body=body,
            _request_timeout=aiohttp.ClientTimeout(sock_connect=connect, sock_read=read),
        )
        await response.read()  # type: ignore[no-untyped-call]
        returns = request.returns
        # Decodes into `returns` on success (nothing when None); raises for any other status.
        decoded = api_client.response_deserialize(
            response, dict.fromkeys(_SUCCESS_STATUSES, returns) if returns else {}
        )
        return decoded.data

    return send


class CallObserver(Protocol):
    """Told about every attempt at an API request (metrics). Injected by the app so this
    package stays free of metrics code; `error` is None on success, else a short kind
    (`not_found`, `conflict`, `forbidden`, `invalid`, `unavailable`, `connection`,
    `malformed`, `error`)."""

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
        (KubeMalformedResponse, "malformed"),
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


class ClusterApi:
    """Calls into one cluster: timeouts, retries, error translation, call metrics."""

    def __init__(
        self, cluster: str, send: Send, policy: RetryPolicy, observer: CallObserver | None = None
    ) -> None:
        self.cluster = cluster
        self.policy = policy
        self._send = send
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
        request: ApiRequest,
        *,
        tries: int | None = None,
        on_conflict_after_retry: Callable[[], Awaitable[Any]] | None = None,
    ) -> Any:
        """Send `request` (retrying what is worth retrying); raise only app/kube errors.

        `on_conflict_after_retry` handles a 409 on a retried create: the earlier attempt may have
        succeeded with its response lost, so the caller checks whether the existing object is
        its own and returns a value to count the create as done (or None to fail).
        """
        operation = request.operation
        max_tries = max(1, tries if tries is not None else self.policy.tries)
        timeout = self.policy.request_timeout
        started = time.monotonic()
        attempt = 0
        while True:
            attempt_started = time.perf_counter()
            try:
                result = await self._send(request, timeout)
            except ApiException as exc:
                error = translate_api_exception(exc, operation, self.cluster)
                self._observe(operation, attempt_started, _error_kind(error))
                if isinstance(error, KubeConflict) and attempt > 0 and on_conflict_after_retry:
                    existing = await on_conflict_after_retry()
                    if existing is not None:
                        log.info("%s: already created by an earlier try", operation)
                        return existing
                if exc.status not in RETRYABLE_STATUSES:
                    raise error from None
                retry_after = api_status(exc).retry_after
                if retry_after is not None and retry_after > self.policy.max_retry_after:
                    raise error from None
                delay = max(retry_after or 0.0, self.policy.backoff(attempt))
                cause = f"HTTP {exc.status}"
            except CERTIFICATE_ERRORS as exc:
                self._observe(operation, attempt_started, "connection")
                raise translate_certificate_error(exc, operation, self.cluster) from None
            except TRANSPORT_ERRORS as exc:
                self._observe(operation, attempt_started, "connection")
                error = translate_transport_error(exc, operation, self.cluster)
                delay = self.policy.backoff(attempt)
                cause = type(exc).__name__
            except ValueError as exc:
                if isinstance(exc, ApiValueError):
                    raise  # the client refused to build our request: a bug of ours
                # The API server answered 2xx with something the client cannot decode (a field
                # its models require is missing, or no JSON at all): the same answer would
                # come back on another try.
                self._observe(operation, attempt_started, "malformed")
                raise translate_undecodable_answer(exc, operation, self.cluster) from None
            else:
                self._observe(operation, attempt_started, None)
                return result
            attempt += 1
            if attempt >= max_tries or time.monotonic() - started + delay > self.policy.max_elapsed:
                raise error
            log.warning(
                "%s on cluster %s: %s, try %d/%d, retrying in %.2fs",
                operation, self.cluster, cause, attempt, max_tries, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
