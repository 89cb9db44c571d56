"""The delivery worker's SQL on the outbox: claim the due heads of the per-grant queues, load
what to send, and settle each attempt (delete, postpone, or give up).

A row is a queue's head when no older row of the same (target, grant) remains: only heads are
claimed, so a grant's events reach a target in the order they were written, and an event that
keeps failing holds back the later events of its grant to that target and nothing else.

A claim is one conditional UPDATE that moves the rows' `next_attempt_at` to the end of a lease:
of two replicas claiming the same row, the second re-checks `next_attempt_at <= now` after the
first commits (PostgreSQL, READ COMMITTED) and matches nothing; on PostgreSQL the candidates
are also picked with FOR UPDATE SKIP LOCKED, so replicas do not queue behind each other's
claims. A replica that dies holding a lease leaves its rows to whoever claims them once the
lease has run out (at least once: a receiver de-duplicates by the event's id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.models import Grant, GrantEvent, NotificationOutbox
from app.notifications.payloads import Notification, grant_fields

# Stay far below SQLite's bound-parameter limit in IN lists.
_IN_CHUNK: Final = 500


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    target: str
    grant_id: str
    event_id: int
    event: str
    created_at: datetime
    attempts: int  # including the one just claimed


# In ClaimedRow's field order.
_CLAIM_COLUMNS: Final = (
    NotificationOutbox.id,
    NotificationOutbox.target,
    NotificationOutbox.grant_id,
    NotificationOutbox.event_id,
    NotificationOutbox.event,
    NotificationOutbox.created_at,
    NotificationOutbox.attempts,
)


async def claim_due(
    session: AsyncSession,
    *,
    target: str | None,
    exclude: Sequence[str] = (),
    now: datetime,
    lease_until: datetime,
    limit: int,
) -> list[ClaimedRow]:
    """Lease up to `limit` due queue heads (oldest first) of `target` to the caller; with
    `target` None, those of any target except the `exclude`d (targets no longer configured)."""
    row, older = NotificationOutbox, aliased(NotificationOutbox)
    has_older = (
        select(older.id)
        .where(older.target == row.target, older.grant_id == row.grant_id, older.id < row.id)
        .exists()
    )
    heads = select(row.id).where(row.next_attempt_at <= now, ~has_older)
    if target is not None:
        heads = heads.where(row.target == target)
    elif exclude:
        heads = heads.where(row.target.not_in(exclude))
    heads = heads.order_by(row.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        heads = heads.with_for_update(skip_locked=True)
    stmt = (
        update(NotificationOutbox)
        .where(NotificationOutbox.id.in_(heads.scalar_subquery()), row.next_attempt_at <= now)
        .values(next_attempt_at=lease_until, attempts=NotificationOutbox.attempts + 1)
        .returning(*_CLAIM_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    claimed = [ClaimedRow(*r) for r in await session.execute(stmt)]
    return sorted(claimed, key=lambda c: c.id)


async def load_notifications(
    session: AsyncSession, claimed: Sequence[ClaimedRow]
) -> dict[int, Notification]:
    """`{outbox id: Notification}` for the claimed rows (a row whose event or grant is gone
    is left out)."""
    found: dict[int, tuple[GrantEvent, Grant]] = {}
    event_ids = sorted({c.event_id for c in claimed})
    for start in range(0, len(event_ids), _IN_CHUNK):
        chunk = event_ids[start : start + _IN_CHUNK]
        stmt = (
            select(GrantEvent, Grant)
            .join(Grant, Grant.id == GrantEvent.grant_id)
            .where(GrantEvent.id.in_(chunk))
        )
        for event, grant in await session.execute(stmt):
            found[event.id] = (event, grant)
    notifications: dict[int, Notification] = {}
    for row in claimed:
        if row.event_id not in found:
            continue
        event, grant = found[row.event_id]
        notifications[row.id] = Notification(
            target=row.target, event=row.event, event_id=event.id, audit_type=event.type,
            actor=event.actor, at=event.at, detail=dict(event.detail), grant=grant_fields(grant),
        )  # fmt: skip
    return notifications


async def delete_rows(session: AsyncSession, ids: Sequence[int]) -> None:
    """Delivered or given up."""
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        await session.execute(
            delete(NotificationOutbox)
            .where(NotificationOutbox.id.in_(chunk))
            .execution_options(synchronize_session=False)
        )


async def postpone(session: AsyncSession, row_id: int, *, retry_at: datetime, error: str) -> None:
    await session.execute(
        update(NotificationOutbox)
        .where(NotificationOutbox.id == row_id)
        .values(next_attempt_at=retry_at, last_error=error)
        .execution_options(synchronize_session=False)
    )


async def backlog(session: AsyncSession) -> dict[str, int]:
    """`{target: undelivered rows}`."""
    stmt = select(NotificationOutbox.target, func.count()).group_by(NotificationOutbox.target)
    return {target: int(count) for target, count in await session.execute(stmt)}
