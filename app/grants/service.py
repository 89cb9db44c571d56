"""The grant reads behind the API: one grant, a page of grants, its events, its kubeconfig
(issued only while some policy still allows the grant: `policy_recheck.py`).

Every change of a grant's state is `GrantLifecycle`'s (`lifecycle.py`); this service only
reads, apart from the audit event each kubeconfig fetch records. Built once per app
(`open_services`); each method opens its own short units of work (docs/ARCHITECTURE.md, "The
transaction rule"), and none is open during the TokenRequest.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from app.auth import Principal
from app.db.engine import Database
from app.db.models import Grant, GrantEvent, GrantStatus
from app.errors import UnprocessableError
from app.grants import approval_queries, repository
from app.grants.clock import format_rfc3339, utcnow
from app.grants.errors import ClusterError, GrantNotActive, cluster_problem
from app.grants.ids import is_grant_id
from app.grants.policy_recheck import GrantUse, recheck_grant
from app.grants.selectors import is_dns1123_label
from app.grants.visibility import effective_status, own_grant, viewable_grant
from app.kube.clusters import MIN_TOKEN_SECONDS, ClusterRegistry
from app.kube.errors import KubeError, KubeNotFound
from app.kube.kubeconfig import render_kubeconfig
from app.reload import LiveConfig


class GrantService:
    def __init__(self, db: Database, clusters: ClusterRegistry, config: LiveConfig) -> None:
        self._db = db
        self._clusters = clusters
        # Read at each use: a reload swaps the policies (app/reload).
        self._config = config

    async def get_grant(self, principal: Principal, grant_id: str) -> Grant:
        async with self._db.session() as session:
            return await viewable_grant(session, principal, grant_id, self._config.policies)

    async def list_grants(
        self,
        principal: Principal,
        *,
        status: GrantStatus | None,
        namespace: str | None,
        cluster: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Grant], str | None]:
        """A page of grants, newest first, and the cursor of the next page (None at the end).
        Asked for `pending_approval` grants, an approver also gets the requests of the policies
        it approves for (the ones it can decide on)."""
        if cursor is not None and not is_grant_id(cursor):
            raise UnprocessableError("not a cursor returned by this API", field="query.cursor")
        # Filters are names, checked like names: anything else matches no grant anyway, and
        # some text (a NUL byte) cannot even be sent to PostgreSQL as a query parameter.
        for field, value in (("namespace", namespace), ("cluster", cluster)):
            if value is not None and not is_dns1123_label(value):
                raise UnprocessableError(
                    f"{field} must be a DNS-1123 label", field=f"query.{field}"
                )
        approved_policies = (
            self._config.policies.approved_by(principal)
            if status is GrantStatus.PENDING_APPROVAL and not principal.is_admin
            else []
        )
        async with self._db.session() as session:
            rows = await repository.list_grants(
                session,
                requester=None if principal.is_admin else principal.id,
                status=status,
                namespace=namespace,
                cluster=cluster,
                cursor=cursor,
                limit=limit,
                or_policies=approved_policies,
            )
            await approval_queries.load_decisions(session, rows)
        if len(rows) > limit:
            return rows[:limit], rows[limit - 1].id
        return rows, None

    async def list_events(self, principal: Principal, grant_id: str) -> list[GrantEvent]:
        async with self._db.session() as session:
            await viewable_grant(session, principal, grant_id, self._config.policies)
            return await repository.list_events(session, grant_id)

    async def list_all_events(
        self, *, since: datetime | None, after_id: int | None, settled_before: datetime, limit: int
    ) -> list[GrantEvent]:
        """The audit feed (`audit_feed.py`): every grant's events in id order."""
        async with self._db.session() as session:
            return await repository.list_events_since(
                session, since=since, after_id=after_id, settled_before=settled_before, limit=limit
            )

    async def count_active_grants(self) -> dict[tuple[str, str], int]:
        """`{(cluster, scanner): n}` of active grants (the metrics gauge)."""
        async with self._db.session() as session:
            return await repository.count_active_grants(session)

    async def issue_kubeconfig(self, principal: Principal, grant_id: str) -> dict[str, Any]:
        """A kubeconfig with a freshly minted token (each fetch rotates it). The token lives
        max(600, remaining) seconds (the TokenRequest minimum); the grant's real end is
        enforced by deleting its RoleBinding and ServiceAccount."""
        async with self._db.session() as session:
            grant = await own_grant(session, principal, grant_id)
        now = utcnow()
        if grant.status is not GrantStatus.ACTIVE or grant.expires_at <= now:
            raise GrantNotActive(grant_id, effective_status(grant, now))
        # Today's policies, not those it was granted under: a removed or narrowed policy
        # stops new credentials at once (the reaper ends the grant itself).
        recheck_grant(
            self._config.policies,
            principal,
            GrantUse(grant.id, grant.requester, grant.cluster, grant.namespace, grant.scanner),
        )
        try:
            cluster = self._clusters.get(grant.cluster)
        except KeyError:
            raise ClusterError(f"cluster {grant.cluster!r} is no longer configured") from None
        remaining = math.ceil((grant.expires_at - now).total_seconds())
        expiration = max(MIN_TOKEN_SECONDS, remaining)
        try:
            issued = await cluster.request_token(grant.id, expiration)
        except KubeNotFound:
            # The ServiceAccount is gone: the grant was revoked or expired a moment ago.
            raise GrantNotActive(grant_id, GrantStatus.REVOKING) from None
        except KubeError as exc:
            raise cluster_problem(exc) from exc
        async with self._db.session() as session:
            await repository.add_event(
                session,
                grant.id,
                at=utcnow(),
                actor=principal.id,
                type="kubeconfig_issued",
                detail={
                    "expiration_seconds": expiration,
                    "token_expires_at": format_rfc3339(issued.expires_at)
                    if issued.expires_at
                    else None,
                },
            )
        return render_kubeconfig(cluster, grant.id, grant.namespace, issued.token)
