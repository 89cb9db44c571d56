"""The approvals' SQL against real databases (SQLite and PostgreSQL): decisions are unique per
grant and approver, only a pending grant can be held or moved on, overdue requests are claimed
once, and the reaper learns the next approval deadline."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest

from app.db.engine import Database
from app.db.models import Grant, GrantStatus, Verdict
from app.grants import approval_queries, reaper_queries, repository
from app.grants.clock import utcnow
from tests.support.grant_rows import grant_row, insert_grants

pytestmark = pytest.mark.anyio


def pending(**overrides: Any) -> Grant:
    values: dict[str, Any] = {
        "status": "pending_approval",
        "approvals_required": 2,
        "approval_deadline": utcnow() + timedelta(hours=1),
        "ttl_seconds": 900,
    }
    return grant_row(**(values | overrides))


class Refused(Exception):
    """Ends a unit of work the way a refused decision does."""


async def decide_again(db: Database, grant_id: str, approver: str) -> bool:
    """A second decision by `approver`, in a unit of work that then rolls back (as the approval
    service does when a decision is refused); whether it was recorded."""
    recorded = True
    with contextlib.suppress(Refused):
        async with db.session() as session:
            recorded = await approval_queries.add_decision(
                session, grant_id, approver=approver, verdict=Verdict.DENIED, at=utcnow(),
                reason="no",
            )  # fmt: skip
            raise Refused
    return recorded


async def test_an_approver_decides_once_per_grant_even_without_the_check(db: Database) -> None:
    grant = pending()
    await insert_grants(db, grant)
    now = utcnow()
    async with db.session() as session:
        assert await approval_queries.add_decision(
            session, grant.id, approver="apikey:bob", verdict=Verdict.APPROVED, at=now, reason=None
        )
    # The unique constraint refuses a second decision.
    assert await decide_again(db, grant.id, "apikey:bob") is False
    async with db.session() as session:
        assert await approval_queries.count_approvals(session, grant.id) == 1
        stored = await repository.get_grant(session, grant.id)
        assert stored is not None
        await approval_queries.load_decisions(session, [stored])
    assert [(d.approver, d.verdict) for d in stored.decisions] == [("apikey:bob", "approved")]


async def test_only_a_pending_grant_is_held_started_or_ended(db: Database) -> None:
    waiting, active = pending(), grant_row()
    await insert_grants(db, waiting, active)
    now = utcnow()
    async with db.session() as session:
        assert not await approval_queries.hold_pending(session, active.id, now=now)
        assert not await approval_queries.start_provisioning(session, active.id, now=now)
        assert not await approval_queries.end_pending(
            session, active.id, status=GrantStatus.DENIED, now=now
        )
        assert await approval_queries.hold_pending(session, waiting.id, now=now)
        assert await approval_queries.start_provisioning(session, waiting.id, now=now)
        # Once provisioning, it is no longer pending: a late denial changes nothing.
        assert not await approval_queries.end_pending(
            session, waiting.id, status=GrantStatus.DENIED, now=now
        )
    with pytest.raises(ValueError, match="pending_approval -> active"):
        async with db.session() as session:
            await approval_queries.end_pending(
                session, waiting.id, status=GrantStatus.ACTIVE, now=now
            )


async def test_overdue_requests_are_claimed_once_and_the_next_deadline_is_due(
    db: Database,
) -> None:
    now = utcnow()
    overdue = pending(approval_deadline=now - timedelta(seconds=1))
    later = pending(approval_deadline=now + timedelta(minutes=5))
    await insert_grants(db, overdue, later)
    async with db.session() as session:
        claimed = await reaper_queries.expire_overdue_approvals(
            session, now=now, error="late", limit=10
        )
        again = await reaper_queries.expire_overdue_approvals(
            session, now=now, error="late", limit=10
        )
        due = await reaper_queries.next_due(session)
        stored = await repository.get_grant(session, overdue.id)
    assert [g.id for g in claimed] == [overdue.id]
    assert again == []
    assert due.approval_deadline == later.approval_deadline
    assert stored is not None
    assert (stored.status, stored.last_error) == (GrantStatus.APPROVAL_EXPIRED, "late")


async def test_counted_grants_are_pending_provisioning_and_active_ones(db: Database) -> None:
    await insert_grants(
        db,
        pending(),
        grant_row(status="provisioning"),
        grant_row(),
        grant_row(status="revoked"),
        grant_row(status="denied"),
        grant_row(requester="apikey:bob"),
        grant_row(policy="other"),
    )
    async with db.session() as session:
        await approval_queries.lock_requester_policy(session, "apikey:alice", "payments-ci")
        held = await approval_queries.count_counted_grants(session, "apikey:alice", "payments-ci")
    assert held == 3
