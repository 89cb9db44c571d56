"""The reaper's SQL: batch claims of due grants, when the next work is due, and what the orphan
sweep asks about grants. Same rules as `repository.py`: claims are conditional UPDATEs whose
RETURNING rows are what this caller won; functions never commit.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.models import LIVE_STATUSES, Grant, GrantEvent, GrantStatus, check_transition
from app.grants.repository import CLAIM_COLUMNS, IN_CHUNK, ClaimedGrant, claimed_grants


async def _claim_batch(
    session: AsyncSession,
    *,
    status: GrantStatus,
    due: ColumnElement[bool],
    order_by: InstrumentedAttribute[Any],
    limit: int,
    values: dict[str, Any],
) -> list[ClaimedGrant]:
    """Up to `limit` grants in `status` for which `due` holds, oldest by `order_by` first,
    updated with `values` in one conditional UPDATE; the ones this statement changed."""
    if "status" in values:
        check_transition([status], values["status"])
    candidates = select(Grant.id).where(Grant.status == status, due).order_by(order_by).limit(limit)
    stmt = (
        update(Grant)
        # The conditions are repeated outside the subquery: they are what PostgreSQL
        # re-checks on a row another replica changed while this statement waited for its lock.
        .where(Grant.id.in_(candidates.scalar_subquery()), Grant.status == status, due)
        .values(**values)
        .returning(*CLAIM_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    return claimed_grants(await session.execute(stmt))


async def claim_expired(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedGrant]:
    """active grants past their expiry -> revoking (ending as `expired`), leased to the caller."""
    return await _claim_batch(
        session,
        status=GrantStatus.ACTIVE,
        due=Grant.expires_at <= now,
        order_by=Grant.expires_at,
        limit=limit,
        values={
            "status": GrantStatus.REVOKING, "end_status": GrantStatus.EXPIRED, "attempts": 1,
            "next_attempt_at": lease_until, "updated_at": now,
        },
    )  # fmt: skip


async def claim_due_revocations(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedGrant]:
    """`revoking` grants whose retry is due (or whose claimant died): lease the next attempt."""
    return await _claim_batch(
        session,
        status=GrantStatus.REVOKING,
        due=Grant.next_attempt_at <= now,
        order_by=Grant.next_attempt_at,
        limit=limit,
        values={
            "attempts": Grant.attempts + 1, "next_attempt_at": lease_until, "updated_at": now,
        },
    )  # fmt: skip


async def fail_stale_provisioning(
    session: AsyncSession, *, entered_before: datetime, now: datetime, error: str, limit: int
) -> list[ClaimedGrant]:
    """Grants `provisioning` for longer than the timeout (their request crashed) -> failed.
    They entered `provisioning` at updated_at: at their request, or at their Nth approval."""
    return await _claim_batch(
        session,
        status=GrantStatus.PROVISIONING,
        due=Grant.updated_at <= entered_before,
        order_by=Grant.updated_at,
        limit=limit,
        values={
            "status": GrantStatus.FAILED,
            "ended_at": now,
            "updated_at": now,
            "last_error": error,
        },
    )


async def expire_overdue_approvals(
    session: AsyncSession, *, now: datetime, error: str, limit: int
) -> list[ClaimedGrant]:
    """pending_approval grants past their approval deadline -> approval_expired (nothing
    exists in the cluster for them, so this ends them)."""
    return await _claim_batch(
        session,
        status=GrantStatus.PENDING_APPROVAL,
        due=Grant.approval_deadline <= now,
        order_by=Grant.approval_deadline,
        limit=limit,
        values={
            "status": GrantStatus.APPROVAL_EXPIRED,
            "ended_at": now,
            "updated_at": now,
            "last_error": error,
        },
    )


@dataclass(frozen=True)
class NextDue:
    """The earliest moments the reaper has work: an expiry, a revocation retry, a provisioning
    grant turning stale (when it entered `provisioning`; the caller adds the timeout), an
    approval deadline."""

    expiry: datetime | None
    retry: datetime | None
    oldest_provisioning: datetime | None
    approval_deadline: datetime | None = None


async def next_due(session: AsyncSession) -> NextDue:
    async def earliest(column: Any, status: GrantStatus) -> datetime | None:
        value: datetime | None = await session.scalar(
            select(func.min(column)).where(Grant.status == status)
        )
        return value

    return NextDue(
        expiry=await earliest(Grant.expires_at, GrantStatus.ACTIVE),
        retry=await earliest(Grant.next_attempt_at, GrantStatus.REVOKING),
        oldest_provisioning=await earliest(Grant.updated_at, GrantStatus.PROVISIONING),
        approval_deadline=await earliest(Grant.approval_deadline, GrantStatus.PENDING_APPROVAL),
    )


async def live_grant_ids(session: AsyncSession, grant_ids: Collection[str]) -> set[str]:
    """Which of `grant_ids` are provisioning, active or revoking: their objects must stay."""
    ids = sorted(grant_ids)
    live: set[str] = set()
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        stmt = select(Grant.id).where(Grant.id.in_(chunk), Grant.status.in_(LIVE_STATUSES))
        live.update((await session.scalars(stmt)).all())
    return live


async def grant_namespaces(session: AsyncSession, cluster: str) -> list[str]:
    """Every namespace a grant on `cluster` ever targeted (where the sweep must look when it may
    not list cluster-wide)."""
    stmt = select(Grant.namespace).where(Grant.cluster == cluster).distinct()
    return sorted((await session.scalars(stmt)).all())


async def grants_as_requested(
    session: AsyncSession, status: GrantStatus = GrantStatus.ACTIVE
) -> list[Row[Any]]:
    """Every `status` grant's (id, requester, cluster, namespace, scanner, request detail): what
    the policy re-check decides on (the detail of its `requested` event holds the OIDC claims
    its policy required)."""
    stmt = (
        select(
            Grant.id, Grant.requester, Grant.cluster, Grant.namespace, Grant.scanner,
            GrantEvent.detail,
        )
        .outerjoin(
            GrantEvent, and_(GrantEvent.grant_id == Grant.id, GrantEvent.type == "requested")
        )
        .where(Grant.status == status)
        .order_by(Grant.id)
    )  # fmt: skip
    return list((await session.execute(stmt)).all())
