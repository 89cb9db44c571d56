"""The ASGI app of the guard's listener: `POST /admission/{cluster}` answers AdmissionReviews.

It is its own app on its own port rather than a route of the REST API: kube-apiserver must
trust its certificate (the webhook's caBundle), it needs none of the API's authentication, rate
limits or docs, and the API's port never has to be reachable from the control plane. The path
names the cluster whose API server calls it, so a grant of one cluster is never judged on
behalf of another that happens to have a ServiceAccount of the same name.

Requests by identities that are not grant ServiceAccounts are allowed untouched: the chart's
matchConditions keep them away, but a cluster that ignores matchConditions must not see all
its exec sessions depend on scangate.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from app.db.engine import Database
from app.grants.clock import utcnow
from app.guard.decisions import Decision, grant_id_of, judge
from app.guard.grant_lookup import load_grant, record_decision
from app.guard.review import parse_review, review_response
from app.notifications import NotificationTargets, attach_outbox
from app.settings import Settings

log = logging.getLogger("scangate.guard")

# The JSON body of an AdmissionReview for an UPDATE carries two pods; kube-apiserver's own
# request limit is far larger, but a pod spec stays well under this.
_MAX_BODY_BYTES = 3 * 1024 * 1024


def create_guard_app(settings: Settings) -> FastAPI:
    grants_namespaces = {c.name: c.grants_namespace for c in settings.clusters}
    policies = {p.name: p for p in settings.policies}
    # The guard's own engine (it connects lazily, on the first review), disposed with the app.
    db = Database(settings.database_url, pool_size=8, max_overflow=4)
    # Its refusals are grant events the notification targets may want (`guard_refused`): their
    # outbox rows commit with them, and the API process's worker delivers them.
    attach_outbox(db, NotificationTargets.from_settings(settings.notifications))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for policy in settings.policies:
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
            await db.dispose()

    app = FastAPI(
        title="scangate grant guard", lifespan=lifespan, docs_url=None, redoc_url=None,
        openapi_url=None,
    )  # fmt: skip

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/admission/{cluster}")
    async def admit(cluster: str, request: Request) -> Response:
        grants_namespace = grants_namespaces.get(cluster)
        if grants_namespace is None:
            return _plain(404, f"cluster {cluster!r} is not configured")
        body = await request.body()
        if len(body) > _MAX_BODY_BYTES:
            return _plain(413, "AdmissionReview too large")
        try:
            review = parse_review(json.loads(body))
        except ValueError as exc:  # bad JSON or MalformedReview
            # kube-apiserver counts this as a webhook failure: failurePolicy Fail refuses.
            return _plain(400, f"not an admission.k8s.io/v1 AdmissionReview: {exc}")
        grant_id = grant_id_of(review.username, grants_namespace)
        if grant_id is None:
            decision = Decision(True, "not a scangate grant identity")
            return JSONResponse(review_response(review.uid, allowed=True, reason=decision.reason))
        async with db.session() as session:
            grant = await load_grant(session, grant_id)
            policy = policies.get(grant.policy) if grant is not None else None
            decision = judge(review, grant, policy, cluster=cluster, now=utcnow())
            # Dry runs are judged but leave no trace (the webhook declares NoneOnDryRun).
            if grant is not None and not review.dry_run:
                await record_decision(session, grant_id, decision, actor=review.username)
        log.info(
            "guard %s %s/%s by grant %s: %s",
            "allowed" if decision.allowed else "denied", review.namespace, review.name,
            grant_id, decision.reason,
        )  # fmt: skip
        return JSONResponse(
            review_response(review.uid, allowed=decision.allowed, reason=decision.reason)
        )

    return app


def _plain(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status)
