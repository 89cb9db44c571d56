"""The ASGI application: the request pipeline of a kube-apiserver, in its order.

Faults (the network between client and server) come first, then authentication (401),
authorization of the verb on the resource (403), and only then body decoding and the work
itself, so a denied request learns nothing about the objects it asked for. Every failure is
answered as a `Status` object.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Final

from kubesim import errors
from kubesim.admin import PREFIX as ADMIN_PREFIX
from kubesim.admin import AdminEndpoint
from kubesim.admission import (
    MAX_ROUNDS,
    AdmissionPending,
    RequestAdmission,
    admission_configured,
    admit_pending,
    conflict_after_rounds,
)
from kubesim.cluster import Cluster
from kubesim.discovery import discovery_document
from kubesim.errors import ApiError
from kubesim.handlers import ResourceHandler
from kubesim.httpio import (
    Request,
    Response,
    json_response,
    read_request,
    request_from_scope,
    send_response,
    status_response,
    warning_header,
)
from kubesim.impersonation import impersonate
from kubesim.openapi import openapi_group_version, openapi_root
from kubesim.openapi_v2 import openapi_v2_document, openapi_v2_protobuf, protobuf_content_type
from kubesim.podexec import StreamSession
from kubesim.rbac import UserInfo, forbidden_message
from kubesim.requestinfo import RequestInfo, parse_request
from kubesim.resources import lookup

_HEALTH_PATHS: Final = frozenset({"/healthz", "/livez", "/readyz"})
# Enough for the benchmark's 500 grants revoked together (a read and a delete per object).
_REQUEST_LOG_SIZE: Final = 20_000


class KubesimApp:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        # Recent requests, for tests that assert on what a client actually sent (retries...).
        self.request_log: deque[dict[str, Any]] = deque(maxlen=_REQUEST_LOG_SIZE)
        self.admin = AdminEndpoint(cluster, self.request_log)
        self.resources = ResourceHandler(cluster)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            request = await read_request(scope, receive)
        except ApiError as exc:
            await send_response(send, status_response(exc))
            return
        if request.path.startswith(ADMIN_PREFIX):
            try:
                admin_response = self.admin.handle(request)
            except ApiError as exc:
                admin_response = status_response(exc)
            await send_response(send, admin_response)
            return
        response = await self._process(request, send)
        if isinstance(response, StreamSession):
            # Only a WebSocket upgrade opens a stream; open_stream refuses anything else.
            response = status_response(errors.internal_error("stream without an upgrade"))
        if response is not None:
            await send_response(send, response)

    async def _websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """WebSocket upgrades (pods/exec and pods/attach; kubectl >= 1.30 and the Python
        client's stream()) go through the same pipeline. Refusals are plain HTTP Status
        responses before the upgrade (401, 403, 404, 400...), as a real server answers them;
        an accepted stream is then served by its session."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        request = request_from_scope(scope)
        outcome = await self._process(request, send)
        if outcome is None:
            return
        if isinstance(outcome, StreamSession):
            await outcome.run(receive, send)
            return
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "websocket.http.response.start",
                "status": outcome.status,
                "headers": [(b"content-type", outcome.content_type.encode())],
            }
        )
        await send({"type": "websocket.http.response.body", "body": outcome.body})

    async def _process(self, request: Request, send: Any) -> Response | StreamSession | None:
        """Answer one API request (or open its stream); None when an injected fault dropped
        the connection."""
        user: UserInfo | None = None
        info: RequestInfo | None = None
        try:
            info = parse_request(request.method, request.path, request.query, request.query_lines)
            if not await self._survives_faults(info, request, send):
                self._record(request.method, request.path, info, None, 0)
                return None
            user = self.cluster.authenticator.authenticate_request(request)
            if user is None:
                raise errors.unauthorized()
            user = impersonate(self.cluster.authorizer, user, request)
            response = await self._serve_admitted(user, info, request)
        except ApiError as exc:
            response = status_response(exc)
        status = 101 if isinstance(response, StreamSession) else response.status
        self._record(request.method, request.path, info, user, status, request.content_type)
        return response

    async def _survives_faults(self, info: RequestInfo, request: Request, send: Any) -> bool:
        faults = self.cluster.faults
        delay = faults.delay_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        rule = faults.pick(request.method, info.resource, info.subresource)
        if rule is None:
            return True
        if rule.drop_connection:
            await _drop_connection(send)
            return False
        raise rule.error()

    async def _serve_admitted(
        self, user: UserInfo, info: RequestInfo, request: Request
    ) -> Response | StreamSession:
        """Serve the request in rounds: a round that reaches a point of admission not yet
        decided stops there (nothing stored), admission runs, and the request is replayed
        (see kubesim.admission)."""
        admission = RequestAdmission(self.cluster, admission_configured(self.cluster))
        for _ in range(MAX_ROUNDS):
            try:
                answer = self._serve(user, info, request, admission)
            except AdmissionPending as pending:
                await admit_pending(self.cluster, admission, pending)
                continue
            if admission.warnings and isinstance(answer, Response):
                # Admission's warnings join the handler's own (a shortened TokenRequest's).
                header = warning_header(admission.warnings)
                earlier = answer.headers.get("Warning")
                answer.headers["Warning"] = f"{earlier}, {header}" if earlier else header
            return answer
        raise conflict_after_rounds()

    def _serve(
        self, user: UserInfo, info: RequestInfo, request: Request, admission: RequestAdmission
    ) -> Response | StreamSession:
        attrs = info.attributes()
        # A WebSocket exec/attach is a GET, authorized here as `get` like any GET; from 1.35
        # the connect handler also asks for `create` (kubesim.podexec.authorization).
        decision = self.cluster.authorizer.authorize(user, attrs)
        if not decision.allowed:
            rt = lookup(info.api_group, info.api_version, info.resource)
            details: dict[str, Any] = {}
            if info.resource_request:
                if info.name:
                    details["name"] = info.name
                if info.api_group:
                    details["group"] = info.api_group
                details["kind"] = rt.plural if rt is not None else info.resource
            message = forbidden_message(user, attrs, decision.reason)
            raise ApiError(403, "Forbidden", message, details)
        if info.resource_request:
            return self.resources.handle(user, info, request, admission)
        if request.path in _HEALTH_PATHS:
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if request.path == "/openapi/v2" and request.method in ("GET", "HEAD"):
            # Go clients only ask for (and only read) the protobuf form; people get JSON.
            protobuf_type = protobuf_content_type(request.headers.get("accept", ""))
            if protobuf_type is not None:
                return Response(200, openapi_v2_protobuf(), protobuf_type)
            return json_response(openapi_v2_document())
        document = discovery_document(
            request.path, request.headers.get("host", ""), self.cluster.version
        )
        if document is None and request.path.startswith("/openapi/v3"):
            rest = request.path[len("/openapi/v3") :].strip("/")
            document = openapi_group_version(rest) if rest else openapi_root()
        if document is None or request.method not in ("GET", "HEAD"):
            raise errors.path_not_found()
        return json_response(document)

    def _record(
        self,
        method: str,
        path: str,
        info: RequestInfo | None,
        user: UserInfo | None,
        status: int,
        content_type: str = "",
    ) -> None:
        self.request_log.append(
            {
                "method": method,
                "path": path,
                # What the body was sent as (kubectl and Helm send protobuf for built-in kinds).
                "content_type": content_type,
                "verb": info.verb if info else "",
                "resource": info.resource if info else "",
                "subresource": info.subresource if info else "",
                "namespace": info.namespace if info else "",
                "name": info.name if info else "",
                "user": user.name if user else "",
                "status": status,  # 0: the connection was dropped
                # When it was answered (Unix time): when a deletion took effect, for the
                # benchmark's revocation lag.
                "at": time.time(),
            }
        )


async def _drop_connection(send: Any) -> None:
    """Close the TCP connection without answering, as a crashed apiserver or a broken load
    balancer would. uvicorn exposes the transport on its `send`; other servers get a started
    response that is never finished, which they also answer by closing the connection."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.abort()
        await asyncio.sleep(0)  # let the server notice the disconnect before we return
        return
    await send({"type": "http.response.start", "status": 500, "headers": []})
    raise ConnectionAbortedError("kubesim: injected dropped connection")


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
