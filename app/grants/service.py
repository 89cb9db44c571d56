"""The grant use cases behind the API: create, read, list, kubeconfig, renew, revoke, events.

Visibility: a principal sees only the grants it requested (anything else is `GrantNotFound`, so
ids do not leak); admins see and may revoke every grant. Credentials and renewals belong to the
requester alone: an admin gets 403 for someone else's grant, never a kubeconfig.

Transactions: reads and renew run in the request's session (the request scope commits). The
use cases that call the cluster (create, kubeconfig, revoke) open their own short units of work
instead, so that no transaction is open during a cluster call and the `provisioning` row is
committed before the first one (see `provisioning.py`); create's two writes go through the
grant writer, which commits concurrent requests' writes together (`group_commit.py`).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db.models import Grant, GrantEvent, GrantStatus
from app.errors import UnprocessableError
from app.grants import repository
from app.grants.clock import format_rfc3339, utcnow
from app.grants.errors import (
    ClusterError,
    CredentialsForbidden,
    GrantNotActive,
    GrantNotFound,
    LifetimeCapReached,
    TtlTooLong,
    cluster_problem,
)
from app.grants.ids import is_grant_id
from app.grants.provisioning import GrantCollaborators, GrantProvisioner
from app.grants.repository import ClaimedGrant
from app.grants.revocation import carry_out_revocation, lease_until
from app.grants.schemas import GrantCreate
from app.grants.selectors import is_dns1123_label
from app.kube.errors import KubeError, KubeNotFound
from app.kube.kubeconfig import render_kubeconfig

# TokenRequest.expirationSeconds minimum enforced by the API server.
MIN_TOKEN_SECONDS = 600


def _no_wakeup(_due: datetime) -> None:
    """Used when no reaper runs in this process (tests, `start_reaper=False`)."""


class GrantService:
    def __init__(self, deps: GrantCollaborators) -> None:
        self._deps = deps

    @classmethod
    def from_state(cls, state: Any) -> GrantService:
        """Built per request from what the app lifespan put on `app.state`."""
        reaper = getattr(state, "reaper", None)
        return cls(
            GrantCollaborators(
                settings=state.settings,
                db=state.db,
                clusters=state.clusters,
                policies=state.policies,
                writer=state.grant_writer,
                wake_reaper=reaper.wake if reaper is not None else _no_wakeup,
                metrics=getattr(state, "metrics", None),
            )
        )

    # -- create -------------------------------------------------------------------------------

    async def provision_grant(self, principal: Principal, request: GrantCreate) -> Grant:
        return await GrantProvisioner(self._deps).provision_grant(principal, request)

    # -- reads --------------------------------------------------------------------------------

    async def get_grant(self, session: AsyncSession, principal: Principal, grant_id: str) -> Grant:
        return await self._visible_grant(session, principal, grant_id)

    async def list_grants(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        status: GrantStatus | None,
        namespace: str | None,
        cluster: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Grant], str | None]:
        """A page of grants, newest first, and the cursor of the next page (None at the end)."""
        if cursor is not None and not is_grant_id(cursor):
            raise UnprocessableError("not a cursor returned by this API", field="query.cursor")
        # Filters are names, checked like names: anything else matches no grant anyway, and
        # some text (a NUL byte) cannot even be sent to PostgreSQL as a query parameter.
        for field, value in (("namespace", namespace), ("cluster", cluster)):
            if value is not None and not is_dns1123_label(value):
                raise UnprocessableError(
                    f"{field} must be a DNS-1123 label", field=f"query.{field}"
                )
        rows = await repository.list_grants(
            session,
            requester=None if principal.is_admin else principal.id,
            status=status,
            namespace=namespace,
            cluster=cluster,
            cursor=cursor,
            limit=limit,
        )
        if len(rows) > limit:
            return rows[:limit], rows[limit - 1].id
        return rows, None

    async def list_events(
        self, session: AsyncSession, principal: Principal, grant_id: str
    ) -> list[GrantEvent]:
        await self._visible_grant(session, principal, grant_id)
        return await repository.list_events(session, grant_id)

    # -- renew --------------------------------------------------------------------------------

    async def renew_grant(
        self, session: AsyncSession, principal: Principal, grant_id: str, ttl_seconds: int
    ) -> Grant:
        """Move the expiry to now + ttl_seconds, never past created_at + the policy's lifetime
        cap and never earlier than it already is. The policy is re-evaluated: a renewal is a new
        decision, made under today's configuration."""
        grant = await self._own_grant(session, principal, grant_id)
        now = utcnow()
        if grant.status is not GrantStatus.ACTIVE or grant.expires_at <= now:
            raise GrantNotActive(grant_id, _effective_status(grant, now))
        policy = self._deps.policies.authorize(
            principal, cluster=grant.cluster, namespace=grant.namespace, scanner=grant.scanner
        )
        if ttl_seconds > policy.max_ttl_seconds:
            raise TtlTooLong(
                f"ttl_seconds {ttl_seconds} exceeds the policy's max_ttl_seconds "
                f"{policy.max_ttl_seconds}",
                field="body.ttl_seconds",
                max_ttl_seconds=policy.max_ttl_seconds,
            )
        cap = grant.created_at + timedelta(seconds=policy.lifetime_cap_seconds)
        wanted = now + timedelta(seconds=ttl_seconds)
        new_expiry = min(wanted, cap)
        if new_expiry <= grant.expires_at:
            if cap <= grant.expires_at:
                raise LifetimeCapReached(
                    f"grant {grant_id!r} already lasts its policy's maximum lifetime "
                    f"({policy.lifetime_cap_seconds} s); it expires at "
                    f"{format_rfc3339(grant.expires_at)}",
                    expires_at=format_rfc3339(grant.expires_at),
                )
            return grant  # it already lasts longer than asked: nothing to do
        if not await repository.extend_expiry(session, grant_id, expires_at=new_expiry, now=now):
            # The reaper claimed it between our read and this update.
            raise GrantNotActive(grant_id, GrantStatus.EXPIRED)
        await repository.add_event(
            session,
            grant_id,
            at=now,
            actor=principal.id,
            type="renewed",
            detail={
                "ttl_seconds": ttl_seconds,
                "previous_expires_at": format_rfc3339(grant.expires_at),
                "expires_at": format_rfc3339(new_expiry),
                "capped": new_expiry < wanted,
            },
        )
        grant.expires_at, grant.updated_at = new_expiry, now
        return grant

    # -- kubeconfig ---------------------------------------------------------------------------

    async def issue_kubeconfig(self, principal: Principal, grant_id: str) -> dict[str, Any]:
        """A kubeconfig with a freshly minted token (each fetch rotates it). The token lives
        max(600, remaining) seconds (the TokenRequest minimum); the grant's real end is
        enforced by deleting the ServiceAccount, which invalidates the token with it."""
        async with self._deps.db.session() as session:
            grant = await self._own_grant(session, principal, grant_id)
        now = utcnow()
        if grant.status is not GrantStatus.ACTIVE or grant.expires_at <= now:
            raise GrantNotActive(grant_id, _effective_status(grant, now))
        try:
            cluster = self._deps.clusters.get(grant.cluster)
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
        async with self._deps.db.session() as session:
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

    # -- revoke -------------------------------------------------------------------------------

    async def revoke_grant(self, principal: Principal, grant_id: str, reason: str | None) -> Grant:
        """Idempotent. Returns the grant afterwards: `revoked` when the cluster objects are gone,
        still `revoking` when the cluster failed (the reaper retries), or unchanged when the
        grant had already ended."""
        now = utcnow()
        async with self._deps.db.session() as session:
            grant = await self._visible_grant(session, principal, grant_id)
            claim: ClaimedGrant | None = None
            if grant.status in (GrantStatus.PROVISIONING, GrantStatus.ACTIVE):
                claim = await repository.claim_for_revocation(
                    session, grant_id, now=now, lease_until=lease_until(now)
                )
                if claim is not None:
                    await repository.add_event(
                        session,
                        grant_id,
                        at=now,
                        actor=principal.id,
                        type="revoking",
                        detail={"reason": reason, "end_status": GrantStatus.REVOKED.value},
                    )
            elif grant.status is GrantStatus.REVOKING:
                # A caller retrying a revocation the cluster refused earlier: try again now
                # rather than wait for the reaper's backoff, unless another attempt is running.
                claim = await repository.claim_revocation_attempt(
                    session, grant_id, now=now, lease_until=lease_until(now)
                )
        if claim is not None:
            status = await carry_out_revocation(
                self._deps.db,
                self._deps.clusters,
                claim,
                actor=principal.id,
                retry_max_seconds=self._deps.settings.reaper.revoke_retry_max_seconds,
                metrics=self._deps.metrics,
            )
            if status is GrantStatus.REVOKING:
                # A deferred revocation has a retry time the reaper should wake up for.
                self._deps.wake_reaper(utcnow())
        async with self._deps.db.session() as session:
            return await self._visible_grant(session, principal, grant_id)

    # -- visibility ---------------------------------------------------------------------------

    async def _visible_grant(
        self, session: AsyncSession, principal: Principal, grant_id: str
    ) -> Grant:
        grant = await repository.get_grant(session, grant_id) if is_grant_id(grant_id) else None
        if grant is None or not (principal.is_admin or grant.requester == principal.id):
            raise GrantNotFound(grant_id)
        return grant

    async def _own_grant(self, session: AsyncSession, principal: Principal, grant_id: str) -> Grant:
        grant = await self._visible_grant(session, principal, grant_id)
        if grant.requester != principal.id:
            # Only admins get here (others were told 404): they may end a grant, not use it.
            raise CredentialsForbidden(
                "only the principal that requested a grant may fetch its kubeconfig or renew it"
            )
        return grant


def _effective_status(grant: Grant, now: datetime) -> GrantStatus:
    # An active grant past its expiry is as good as expired; the reaper is about to end it.
    if grant.status is GrantStatus.ACTIVE and grant.expires_at <= now:
        return GrantStatus.EXPIRED
    return grant.status
