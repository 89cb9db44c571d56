"""Approvals: the decisions on grants whose policy has `approval` (README "Approvals"), built
once per app (`open_services`).

    approve           pending_approval: one more approval; the Nth -> provisioning, then
                      provisioned by the approver's request (`GrantLifecycle.provision_approved`)
    deny              pending_approval -> denied
    expire_overdue    pending_approval past its deadline -> approval_expired        (the reaper)
    deny_disallowed   pending_approval no policy allows any more -> denied by
                      `scangate:system`                                             (the reaper)

A pending grant has no cluster object, so none of these touches the cluster except the Nth
approval, which does so only after its `provisioning` row is committed (the transaction rule,
docs/ARCHITECTURE.md).

Races: every decision first locks the grant's row (`approval_queries.hold_pending`, a
conditional UPDATE of a `pending_approval` row), so decisions on one grant run one after the
other. Of two approvers giving the last approvals at once, the second counts the first's
approval and is the one that moves the grant to `provisioning`; if the first already did, the
second finds the grant no longer pending (409). Exactly one request provisions.

Policy re-check: a pending grant outlives the configuration it was requested under, so each
approval re-authorizes the requester (with the OIDC claims recorded at request time) under
today's policies; if none allows the request any more, scangate denies it (`scangate:system`,
reason "policy no longer allows this grant") and the approver gets a 409 saying so. The reaper
does the same for every pending grant whenever it re-checks the active grants against the
configuration (`deny_disallowed`, beside `GrantEnder.revoke_disallowed`), so such requests end
even if nobody tries to approve them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db.engine import Database
from app.db.models import Grant, GrantStatus, Verdict
from app.errors import ScangateError
from app.grants import approval_queries, reaper_queries, repository
from app.grants.clock import format_rfc3339, utcnow
from app.grants.errors import (
    AlreadyDecided,
    GrantNoLongerAllowed,
    GrantNotFound,
    GrantNotPending,
    NotAnApprover,
    SelfApprovalRefused,
)
from app.grants.ids import is_grant_id
from app.grants.lifecycle import GrantLifecycle
from app.grants.policy_recheck import (
    DISALLOWED_REASON,
    GrantUse,
    disallowed_grants,
    recheck_grant,
    recorded_principal,
)
from app.grants.revocation import REAPER_ACTOR
from app.grants.visibility import effective_status
from app.reload import LiveConfig
from app.settings_sections import PolicyConfig

log = logging.getLogger(__name__)

# Who denies a request no policy allows any more (the decision row and the event's actor).
SYSTEM_ACTOR: Final = "scangate:system"
_EXPIRED_ERROR: Final = "no approval decision before the approval deadline"


class GrantApprovals:
    def __init__(
        self,
        *,
        db: Database,
        config: LiveConfig,
        lifecycle: GrantLifecycle,
        wake_reaper: Callable[[datetime], None],
    ) -> None:
        self._db = db
        # The configuration in force, read at each use: a reload swaps it (app/reload).
        self._config = config
        self._lifecycle = lifecycle
        self._wake_reaper = wake_reaper

    # -- a caller's decisions ---------------------------------------------------------------

    async def approve(self, principal: Principal, grant_id: str, reason: str | None) -> Grant:
        """Record `principal`'s approval. The Nth provisions the grant in this request and the
        grant is returned as that left it: active, or failed/rejected with `last_error` when
        the cluster refused (the approval stands either way)."""
        now = utcnow()
        denial: str | None = None
        allowing: PolicyConfig | None = None
        async with self._db.session() as session:
            grant = await self._decidable(session, principal, grant_id, now)
            try:
                allowing = await self._allowing_policy(session, grant)
            except GrantNoLongerAllowed as exc:
                denial = exc.detail
                await self._deny_in(session, grant.id, SYSTEM_ACTOR, DISALLOWED_REASON, now)
            else:
                if not await approval_queries.add_decision(
                    session, grant.id, approver=principal.id, verdict=Verdict.APPROVED, at=now,
                    reason=reason,
                ):  # fmt: skip
                    raise _already_decided(principal, grant.id)
                approvals = await approval_queries.count_approvals(session, grant.id)
                required = grant.approvals_required or 1
                await repository.add_event(
                    session, grant.id, at=now, actor=principal.id, type="approved",
                    detail={"reason": reason, "approvals": approvals, "required": required},
                )  # fmt: skip
                if approvals < required:
                    allowing = None  # not the last: nothing to provision
                elif not await approval_queries.start_provisioning(session, grant.id, now=now):
                    # Cannot happen while this unit holds the row (`_decidable`): a bug guard.
                    raise GrantNotPending(grant.id, GrantStatus.PROVISIONING)
        if denial is not None:
            log.warning("grant %s denied: %s", grant_id, denial)
            raise GrantNotPending(grant_id, GrantStatus.DENIED, why=denial)
        if allowing is not None:
            log.info("grant %s approved (%s); provisioning", grant.id, principal.id)
            try:
                await self._lifecycle.provision_approved(grant, allowing, actor=principal.id)
            except ScangateError as exc:
                # The grant ended failed or rejected, with its error recorded: the approval
                # stands, and the approver sees the outcome in the grant.
                log.info("grant %s: provisioning after approval failed: %s", grant.id, exc)
        return await self._current(grant_id)

    async def deny(self, principal: Principal, grant_id: str, reason: str) -> Grant:
        """Record `principal`'s denial: the grant ends `denied` at once (one denial suffices)."""
        now = utcnow()
        async with self._db.session() as session:
            grant = await self._decidable(session, principal, grant_id, now)
            if not await self._deny_in(session, grant.id, principal.id, reason, now):
                raise _already_decided(principal, grant.id)
        log.info("grant %s denied by %s", grant_id, principal.id)
        return await self._current(grant_id)

    async def _decidable(
        self, session: AsyncSession, principal: Principal, grant_id: str, now: datetime
    ) -> Grant:
        """The grant, locked for this decision, once `principal` may decide on it now:
        404 if it may not see it, 403 if it is no approver (or is the requester and the policy
        refuses self-approval), 409 if the grant is not pending (any more) or `principal`
        already decided."""
        grant = await repository.get_grant(session, grant_id) if is_grant_id(grant_id) else None
        if grant is None:
            raise GrantNotFound(grant_id)
        approver = grant.approvals_required is not None and self._config.policies.approves(
            principal, grant.policy
        )
        if not approver:
            if not (principal.is_admin or grant.requester == principal.id):
                raise GrantNotFound(grant_id)
            own = " (a requester cannot approve its own request)"
            raise NotAnApprover(
                f"{principal.id} is not an approver of policy {grant.policy!r}"
                + (own if grant.requester == principal.id else ""),
                policy=grant.policy,
            )
        policy = self._config.policies.get(grant.policy)
        if grant.requester == principal.id and not (
            policy and policy.approval and policy.approval.allow_self_approval
        ):
            raise SelfApprovalRefused(
                f"{principal.id} requested grant {grant_id!r}: policy {grant.policy!r} does not "
                "allow self-approval (allow_self_approval: false)",
                policy=grant.policy,
            )
        status = effective_status(grant, now)
        if status is not GrantStatus.PENDING_APPROVAL:
            if status is GrantStatus.APPROVAL_EXPIRED:
                self._wake_reaper(now)
            raise GrantNotPending(grant_id, status)
        if not await approval_queries.hold_pending(session, grant_id, now=now):
            # Decided (or withdrawn) between the read and the lock.
            current = await repository.get_grant(session, grant_id)
            raise GrantNotPending(grant_id, current.status if current else "gone")
        if await approval_queries.find_decision(session, grant_id, principal.id) is not None:
            raise _already_decided(principal, grant_id)
        return grant

    async def _allowing_policy(self, session: AsyncSession, grant: Grant) -> PolicyConfig:
        """The policy that allows the requester this grant today; GrantNoLongerAllowed when
        none does."""
        requested = await approval_queries.requested_detail(session, grant.id) or {}
        requester = recorded_principal(grant.requester, requested.get("claims"))
        return recheck_grant(self._config.policies, requester, _use(grant))

    async def _deny_in(
        self, session: AsyncSession, grant_id: str, approver: str, reason: str, now: datetime
    ) -> bool:
        """pending_approval -> denied, with the decision and its event; False if `approver`
        had already decided (the unique constraint: the unit of work must then end by raising,
        since PostgreSQL has aborted it). The caller holds the row (`hold_pending`)."""
        if not await approval_queries.add_decision(
            session, grant_id, approver=approver, verdict=Verdict.DENIED, at=now, reason=reason
        ):
            return False
        await approval_queries.end_pending(session, grant_id, status=GrantStatus.DENIED, now=now)
        await repository.add_event(
            session, grant_id, at=now, actor=approver, type="denied", detail={"reason": reason}
        )
        return True

    async def _current(self, grant_id: str) -> Grant:
        async with self._db.session() as session:
            grant = await repository.get_grant(session, grant_id)
            if grant is None:
                raise GrantNotFound(grant_id)
            await approval_queries.load_decisions(session, [grant])
            return grant

    # -- the reaper's steps -----------------------------------------------------------------

    async def expire_overdue(self, *, limit: int) -> int:
        """End up to `limit` pending grants past their approval deadline (`approval_expired`);
        how many."""
        now = utcnow()
        async with self._db.session() as session:
            ended = await reaper_queries.expire_overdue_approvals(
                session, now=now, error=_EXPIRED_ERROR, limit=limit
            )
            await repository.add_events(
                session,
                [
                    repository.NewEvent(g.id, "approval_expired", {"error": _EXPIRED_ERROR})
                    for g in ended
                ],
                at=now,
                actor=REAPER_ACTOR,
            )
        for grant in ended:
            log.info("grant %s approval_expired at %s", grant.id, format_rfc3339(now))
        return len(ended)

    async def deny_disallowed(self) -> int:
        """Deny the pending grants no policy allows any more; how many."""
        async with self._db.session() as session:
            rows = await reaper_queries.grants_as_requested(session, GrantStatus.PENDING_APPROVAL)
        why = disallowed_grants(
            self._config.policies,
            [
                (
                    GrantUse(row.id, row.requester, row.cluster, row.namespace, row.scanner),
                    (row.detail or {}).get("claims"),
                )
                for row in rows
            ],
        )
        denied = 0
        now = utcnow()
        for grant_id, detail in why.items():
            # One unit of work each: the row lock orders this after any approval in flight.
            async with self._db.session() as session:
                if await approval_queries.hold_pending(
                    session, grant_id, now=now
                ) and await self._deny_in(session, grant_id, SYSTEM_ACTOR, DISALLOWED_REASON, now):
                    denied += 1
                    log.warning("grant %s denied: %s", grant_id, detail)
        return denied


def _use(grant: Grant) -> GrantUse:
    return GrantUse(grant.id, grant.requester, grant.cluster, grant.namespace, grant.scanner)


def _already_decided(principal: Principal, grant_id: str) -> AlreadyDecided:
    return AlreadyDecided(
        f"{principal.id} already decided on grant {grant_id!r}; an approver decides once",
        approver=principal.id,
    )
