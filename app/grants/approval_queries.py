"""The approvals' SQL (app/grants/approvals.py and the approval parts of the lifecycle): the
decisions table, the row lock every decision takes, the pending grant's transitions and the
`max_active_grants` count. Same rules as `repository.py`: state changes are conditional
UPDATEs, functions never commit.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.db.models import COUNTED_STATUSES, Grant, GrantDecision, GrantEvent, GrantStatus, Verdict
from app.grants.repository import IN_CHUNK, transition


async def insert_grant(session: AsyncSession, grant: Grant) -> None:
    """Insert a new grant through the caller's unit of work (a grant whose insert must share a
    transaction with a check: approval requests and policies with `max_active_grants`)."""
    session.add(grant)
    await session.flush()


def _lock_key(*parts: str) -> int:
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_requester_policy(session: AsyncSession, requester: str, policy: str) -> None:
    """Serialise, until the caller's transaction ends, every count-then-insert of `requester`'s
    grants under `policy` (`max_active_grants`): on PostgreSQL a transaction-scoped advisory
    lock, without which two concurrent requests could both count below the limit and both
    insert. SQLite needs none: its one pooled connection runs one transaction at a time."""
    if session.get_bind().dialect.name == "postgresql":
        key = _lock_key("max_active_grants", requester, policy)
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def count_counted_grants(session: AsyncSession, requester: str, policy: str) -> int:
    """`requester`'s grants under `policy` that count against `max_active_grants`."""
    stmt = select(func.count()).where(
        Grant.requester == requester,
        Grant.policy == policy,
        Grant.status.in_(COUNTED_STATUSES),
    )
    return int(await session.scalar(stmt) or 0)


async def load_decisions(session: AsyncSession, grants: Sequence[Grant]) -> None:
    """Load the approvals and denials of the grants that needed approval (one query; none when
    no grant did). `Grant.decisions` is never loaded implicitly."""
    needing = [g for g in grants if g.approvals_required is not None]
    if not needing:
        return
    found: dict[str, list[GrantDecision]] = defaultdict(list)
    ids = [g.id for g in needing]
    for start in range(0, len(ids), IN_CHUNK):
        stmt = (
            select(GrantDecision)
            .where(GrantDecision.grant_id.in_(ids[start : start + IN_CHUNK]))
            .order_by(GrantDecision.id)
        )
        for decision in await session.scalars(stmt):
            found[decision.grant_id].append(decision)
    for grant in needing:
        set_committed_value(grant, "decisions", found[grant.id])


async def hold_pending(session: AsyncSession, grant_id: str, *, now: datetime) -> bool:
    """Lock a `pending_approval` grant's row for the caller's transaction (an UPDATE of
    updated_at); False if it is not pending. Every decision takes this lock first, so decisions
    on one grant run one after the other: the approval that counts the Nth is the one that sees
    every earlier approval committed (on PostgreSQL a waiting UPDATE re-reads the row once the
    first commits, and then finds it `provisioning` or `denied` if that one ended it)."""
    return await transition(session, grant_id, source=GrantStatus.PENDING_APPROVAL, now=now)


async def find_decision(session: AsyncSession, grant_id: str, approver: str) -> str | None:
    """`approver`'s verdict on the grant, if it gave one."""
    stmt = select(GrantDecision.verdict).where(
        GrantDecision.grant_id == grant_id, GrantDecision.approver == approver
    )
    verdict: str | None = await session.scalar(stmt)
    return verdict


async def add_decision(
    session: AsyncSession,
    grant_id: str,
    *,
    approver: str,
    verdict: str,
    at: datetime,
    reason: str | None,
) -> bool:
    """Record a decision; False if `approver` had already decided on the grant (the unique
    constraint; the caller's transaction must then end, as PostgreSQL aborts it)."""
    decision = GrantDecision(
        grant_id=grant_id, approver=approver, verdict=verdict, at=at, reason=reason
    )
    session.add(decision)
    try:
        await session.flush()
    except IntegrityError:
        return False
    return True


async def count_approvals(session: AsyncSession, grant_id: str) -> int:
    stmt = select(func.count()).where(
        GrantDecision.grant_id == grant_id, GrantDecision.verdict == Verdict.APPROVED
    )
    return int(await session.scalar(stmt) or 0)


async def start_provisioning(session: AsyncSession, grant_id: str, *, now: datetime) -> bool:
    """pending_approval -> provisioning (the Nth approval). From here the grant is live and the
    provisioning timeout counts from `now` (updated_at)."""
    return await transition(
        session,
        grant_id,
        source=GrantStatus.PENDING_APPROVAL,
        now=now,
        status=GrantStatus.PROVISIONING,
    )


async def end_pending(
    session: AsyncSession,
    grant_id: str,
    *,
    status: GrantStatus,
    now: datetime,
    error: str | None = None,
) -> bool:
    """pending_approval -> denied | revoked: nothing exists in the cluster, so nothing to
    delete."""
    return await transition(
        session,
        grant_id,
        source=GrantStatus.PENDING_APPROVAL,
        now=now,
        status=status,
        ended_at=now,
        last_error=error,
    )


async def activate_approved(
    session: AsyncSession,
    grant_id: str,
    *,
    pods: list[str],
    exposure: dict[str, Any] | None,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """provisioning -> active for an approved grant: its TTL counts from `now`, so its expiry
    is set here (a grant without approval is activated by the grant writer)."""
    return await transition(
        session,
        grant_id,
        source=GrantStatus.PROVISIONING,
        now=now,
        status=GrantStatus.ACTIVE,
        pods=pods,
        exposure=exposure,
        expires_at=expires_at,
        activated_at=now,
    )


async def requested_detail(session: AsyncSession, grant_id: str) -> dict[str, Any] | None:
    """The detail of the grant's `requested` event (the OIDC claims its policy required)."""
    stmt = select(GrantEvent.detail).where(
        GrantEvent.grant_id == grant_id, GrantEvent.type == "requested"
    )
    detail: dict[str, Any] | None = await session.scalar(stmt.limit(1))
    return detail
