"""The ASGI app of the guard's listener: `POST /admission/{cluster}` answers AdmissionReviews.

It is its own app on its own port rather than a route of the REST API: kube-apiserver must
trust its certificate (the webhook's caBundle), it needs none of the API's authentication, rate
limits or docs, and the API's port never has to be reachable from the control plane. The path
names the cluster whose API server calls it, so a grant of one cluster is never judged on
behalf of another that happens to have a ServiceAccount of the same name.

A plain ASGI callable rather than a FastAPI app: it has two routes, one JSON body and no
parameters to validate, and every exec of a grant waits for it, so the framework's per-request
layers (middleware stack, routing, dependency resolution, response classes) would be most of
its own CPU per decision (docs/bench/RESULTS.md, "The grant guard").

Requests by identities that are not grant ServiceAccounts are allowed untouched: the chart's
matchConditions keep them away, but a cluster that ignores matchConditions must not see all
its exec sessions depend on scangate.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Final

from app.db.engine import Database
from app.guard.decision_batch import DecisionBatcher
from app.guard.decisions import grant_id_of
from app.guard.review import parse_review, review_response
from app.notifications import NotificationTargets, attach_outbox
from app.reload import LiveConfig, build_generation
from app.settings import Settings

log = logging.getLogger("scangate.guard")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# The JSON body of an AdmissionReview for an UPDATE carries two pods; kube-apiserver's own
# request limit is far larger, but a pod spec stays well under this.
_MAX_BODY_BYTES: Final = 3 * 1024 * 1024
_ADMISSION_PREFIX: Final = "/admission/"
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    """The caller disconnected before its request body arrived: nobody to answer."""


class GuardApp:
    """The guard's ASGI app (HTTP and lifespan)."""

    def __init__(self, settings: Settings, config: LiveConfig | None = None) -> None:
        self._settings = settings
        self._grants_namespaces = {c.name: c.grants_namespace for c in settings.clusters}
        # The guard's own engine (it connects lazily, on the first review), disposed with the
        # app.
        self._db = Database(settings.database_url, pool_size=8, max_overflow=4)
        # The policies in force, shared with the API's app in `scangate serve`: a reload
        # changes what the next batch judges with.
        live = config if config is not None else LiveConfig(build_generation(settings))
        # Its refusals are grant events the notification targets may want (`guard_refused`):
        # their outbox rows commit with them, and the API process's worker delivers them.
        targets = NotificationTargets.from_settings(live.newest().settings.notifications)
        attach_outbox(self._db, targets)
        live.subscribe(lambda new: targets.replace_from_settings(new.notifications))
        self._batcher = DecisionBatcher(
            self._db, lambda: live.current().policies, notifications=targets
        )

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        for policy in self._settings.policies:
            if "debug" in policy.scanners and not policy.debug_images:
                # Valid (older configurations keep starting), but worth saying once.
                log.warning(
                    "policy %s grants the debug profile but lists no debug_images: the guard "
                    "refuses every debug container of its grants",
                    policy.name,
                )
        try:
            yield
        finally:
            await self._batcher.drain()
            await self._db.dispose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # uvicorn closes a WebSocket the app does not accept
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            if method not in ("GET", "HEAD"):
                await _json(send, 405, {"message": "method not allowed"})
                return
            await _json(send, 200, {"status": "ok"})
            return
        if not path.startswith(_ADMISSION_PREFIX) or "/" in path[len(_ADMISSION_PREFIX) :]:
            await _json(send, 404, {"message": "not found"})
            return
        if method != "POST":
            await _json(send, 405, {"message": "method not allowed"})
            return
        try:
            status, document = await self._admit(path[len(_ADMISSION_PREFIX) :], scope, receive)
        except _ClientGone:
            return
        await _json(send, status, document)

    async def _admit(self, cluster: str, scope: Scope, receive: Receive) -> tuple[int, Any]:
        grants_namespace = self._grants_namespaces.get(cluster)
        if grants_namespace is None:
            return 404, {"message": f"cluster {cluster!r} is not configured"}
        try:
            body = await _read_body(scope, receive)
        except _BodyTooLarge:
            return 413, {"message": "AdmissionReview too large"}
        try:
            review = parse_review(json.loads(body))
        except ValueError as exc:  # bad JSON or MalformedReview
            # kube-apiserver counts this as a webhook failure: failurePolicy Fail refuses.
            return 400, {"message": f"not an admission.k8s.io/v1 AdmissionReview: {exc}"}
        grant_id = grant_id_of(review.username, grants_namespace)
        if grant_id is None:
            return 200, review_response(
                review.uid, allowed=True, reason="not a scangate grant identity"
            )
        # Answered only once its audit events have committed (decision_batch.py).
        decision = await self._batcher.decide(review, grant_id, cluster=cluster)
        if review.dry_run or not decision.records:
            # A recorded decision is logged as its audit records (logger `scangate.audit`,
            # verdict and reason in their detail); these have none.
            log.info(
                "guard %s %s/%s by grant %s%s: %s",
                "allowed" if decision.allowed else "denied", review.namespace, review.name,
                grant_id, " (dry run)" if review.dry_run else "", decision.reason,
            )  # fmt: skip
        return 200, review_response(review.uid, allowed=decision.allowed, reason=decision.reason)

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self.lifespan())
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})


def create_guard_app(settings: Settings, config: LiveConfig | None = None) -> GuardApp:
    return GuardApp(settings, config)


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > _MAX_BODY_BYTES:
            raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY_BYTES:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _json(send: Send, status: int, document: Any) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
