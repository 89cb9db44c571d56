"""New grants whose insert shares a unit of work with a check, outside the grant writer's group
commit (`group_commit.py`): requests that wait for approval (`pending_approval`, with their
`requested` and `approval_required` events) and requests under a policy with
`max_active_grants`, counted in the transaction that inserts them.

The count is race-free: on PostgreSQL a transaction-scoped advisory lock per (requester,
policy) makes concurrent requests count one after the other
(`approval_queries.lock_requester_policy`); on SQLite the one pooled connection already runs
one transaction at a time. Such requests give up the group commit, which only the hot path of
immediate grants without a limit needs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.db.engine import Database
from app.db.models import Grant, GrantStatus
from app.grants import approval_queries, repository
from app.grants.clock import format_rfc3339
from app.grants.policy_limits import check_active_grant_limit
from app.grants.repository import NewEvent
from app.settings_sections import ApprovalConfig, PolicyConfig


def approval_required_detail(approval: ApprovalConfig, deadline: datetime) -> dict[str, Any]:
    """The `approval_required` event's detail: who may approve, how many, until when."""
    return {
        "required": approval.required,
        "approvers": list(approval.approvers),
        "allow_self_approval": approval.allow_self_approval,
        "deadline": format_rfc3339(deadline),
    }


async def insert_counted(
    db: Database, grant: Grant, policy: PolicyConfig, events: list[NewEvent]
) -> None:
    """Insert `grant` (new, transient) and its events in one unit of work, after checking the
    policy's `max_active_grants` in it (409 naming the limit)."""
    async with db.session() as session:
        limit = policy.max_active_grants
        if limit is not None:
            await approval_queries.lock_requester_policy(session, grant.requester, policy.name)
            held = await approval_queries.count_counted_grants(
                session, grant.requester, policy.name
            )
            check_active_grant_limit(held, limit, grant.requester, policy.name)
        await approval_queries.insert_grant(session, grant)
        await repository.add_events(session, events, at=grant.created_at, actor=grant.requester)


async def insert_pending(
    db: Database,
    grant: Grant,
    policy: PolicyConfig,
    approval: ApprovalConfig,
    detail: dict[str, Any],
) -> datetime:
    """Commit `grant` as `pending_approval` with its `requested` and `approval_required`
    events; its approval deadline. No cluster call happens for it before its Nth approval.
    Its TTL counts from activation: until then its expiry is the latest it could be
    (deadline + TTL), which nothing treats as due (only active grants expire)."""
    deadline = grant.created_at + timedelta(seconds=approval.timeout_seconds)
    grant.status = GrantStatus.PENDING_APPROVAL
    grant.approvals_required, grant.approval_deadline = approval.required, deadline
    grant.expires_at = deadline + timedelta(seconds=grant.ttl_seconds or 0)
    # Loaded (empty) before the insert, so the answer can show them without a query.
    grant.decisions = []
    requested = {**detail, "approval_required": approval.required}
    await insert_counted(
        db,
        grant,
        policy,
        [
            NewEvent(grant.id, "requested", requested),
            NewEvent(grant.id, "approval_required", approval_required_detail(approval, deadline)),
        ],
    )
    return deadline
