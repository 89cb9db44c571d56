"""The request middleware: a request id, a latency observation and one access record per request.

Request ids: a caller (or a proxy) may send `X-Request-ID` to correlate its own logs with ours;
it is used if it is 1-64 letters, digits and '-' (UUIDs, ULIDs and W3C trace ids fit), otherwise
a fresh id is made. The id is returned in `X-Request-ID` on every response this middleware sees
and logged with every line the request causes. The strict alphabet matters for secrets: a
credential pasted into the header by mistake (API keys contain '_', JWTs contain '.') is never
echoed or logged.

The access record names the route template (`/v1/grants/{grant_id}`), never the raw path or the
query string, which could carry anything a caller typed; it names the principal and the grant
the request acted on. Bodies and headers are never logged.

This is a plain ASGI middleware, not Starlette's BaseHTTPMiddleware, which would run the app in
another task and break streaming. Starlette always puts its ServerErrorMiddleware outside user
middleware, so this middleware answers a bug's 500 itself (with the app's handler for
unexpected exceptions): the response carries `X-Request-ID`, and the error record and the
access record (status 500) carry the id.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.context import RequestContext, enter_request, leave_request
from app.observability.metrics import UNMATCHED_ROUTE, ScangateMetrics

REQUEST_ID_HEADER: Final = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
# Probes and scrapes arrive every few seconds from every kubelet and Prometheus; their
# successful access records are DEBUG so they do not drown the records of real callers.
QUIET_ROUTES: Final = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = logging.getLogger("scangate.access")


def accepted_request_id(value: str | None) -> str | None:
    """`value` if it is a well-formed request id, else None (the caller's id is dropped)."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            decoded: str = value.decode("latin-1")  # HTTP header bytes; never fails
            return decoded
    return None


def route_template(scope: Scope) -> str:
    """The path template of the route that handled the request, or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        return UNMATCHED_ROUTE
    return str(scope.get("root_path", "")).rstrip("/") + path


def _principal_of(scope: Scope) -> str | None:
    # `current_principal` stores the authenticated principal on request.state, which is
    # the "state" dict of this very scope.
    state = scope.get("state")
    principal = state.get("principal") if isinstance(state, dict) else None
    principal_id = getattr(principal, "id", None)
    return principal_id if isinstance(principal_id, str) else None


def _grant_of(
    scope: Scope, context: RequestContext, is_grant_id: Callable[[str], bool]
) -> str | None:
    if context.grant_id is not None:
        return context.grant_id
    grant_id = (scope.get("path_params") or {}).get("grant_id")
    # Only a well-formed id is logged: a path segment can hold anything a caller typed.
    return grant_id if isinstance(grant_id, str) and is_grant_id(grant_id) else None


class RequestObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: ScangateMetrics,
        is_grant_id: Callable[[str], bool],
        on_unexpected: Callable[[Request, Any], Response | Awaitable[Response]] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        # Which path segments are grant ids worth logging (the grants package's rule, handed
        # in so that this package imports nothing of the domain it observes).
        self.is_grant_id = is_grant_id
        # The app's handler of unexpected exceptions (bugs): called here, inside this
        # middleware, rather than by Starlette's outermost error middleware, so that the 500 it
        # answers carries X-Request-ID and its log record the request id.
        self.on_unexpected = on_unexpected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(_header(scope, b"x-request-id")) or new_request_id()
        context = RequestContext(request_id)
        status = 500  # what the caller gets if the app raises before responding
        responded = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = int(message["status"]), True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = enter_request(context)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception as exc:
            if responded or self.on_unexpected is None:
                raise  # too late for a 500 (the server cuts the connection), or nobody to ask
            # Logged by the handler (with the traceback); not re-raised, which would log it
            # a second time without the request id.
            response = self.on_unexpected(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send_with_request_id)
        finally:
            seconds = time.perf_counter() - started
            self._record(scope, context, status, seconds)
            leave_request(token)

    def _record(self, scope: Scope, context: RequestContext, status: int, seconds: float) -> None:
        method = str(scope.get("method", ""))
        route = route_template(scope)
        self.metrics.http_request_finished(method, route, status, seconds)
        fields: dict[str, Any] = {
            "http": {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            },
            "principal": _principal_of(scope),
            "grant_id": _grant_of(scope, context, self.is_grant_id),
        }
        client = scope.get("client")
        if client:
            fields["client"] = client[0]
        quiet = route in QUIET_ROUTES and status < 400
        access_log.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s %s %d %.1fms",
            method,
            route,
            status,
            seconds * 1000,
            extra=fields,
        )
