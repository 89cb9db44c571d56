"""The grants package's SQL for single grants: lookups, listings, events and each grant's
state changes. The reaper's batch queries are in `reaper_queries.py`.

State changes are conditional UPDATEs (`... WHERE status = 'active'`) whose affected rows say who
won: of two replicas (or a request and the reaper) racing for one grant, exactly one sees its
row. On PostgreSQL a concurrent UPDATE waits for the first to commit and then re-checks its WHERE
against the new row version (READ COMMITTED), so the loser matches nothing; SQLite serialises
writers. Bulk claims use UPDATE ... RETURNING (PostgreSQL, SQLite >= 3.35) so a claim and the
list of what it claimed are one atomic statement.

Functions take the caller's session and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, Row, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Grant, GrantEvent, GrantStatus, check_transition
from app.notifications.outbox import EventWritten, add_outbox_rows
from app.observability.audit import audit_fields, record_after_commit

# SQLite allows 32766 bound parameters per statement; stay far below for IN lists.
IN_CHUNK: Final = 500


@dataclass(frozen=True)
class ClaimedGrant:
    """What a claimant needs to act on a grant in the cluster, without holding the row."""

    id: str
    cluster: str
    namespace: str
    end_status: GrantStatus | None
    attempts: int
    scanner: str  # metrics labels
    expires_at: datetime  # revocation lag is measured from it


# In ClaimedGrant's field order.
CLAIM_COLUMNS: Final = (
    Grant.id,
    Grant.cluster,
    Grant.namespace,
    Grant.end_status,
    Grant.attempts,
    Grant.scanner,
    Grant.expires_at,
)


def claimed_grants(rows: Iterable[Any]) -> list[ClaimedGrant]:
    return [ClaimedGrant(*row) for row in rows]


async def add_event(
    session: AsyncSession,
    grant_id: str,
    *,
    at: datetime,
    actor: str,
    type: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record an audit event; it is also logged (logger `scangate.audit`) once committed, and
    queued for the notification targets that want it (app/notifications) in this transaction."""
    event = GrantEvent(grant_id=grant_id, at=at, actor=actor, type=type, detail=detail or {})
    session.add(event)
    await session.flush()  # assigns the id the audit record carries
    await add_outbox_rows(session, [EventWritten(grant_id, event.id, type, event.detail, at)])
    record_after_commit(
        session,
        audit_fields(
            event_id=event.id, grant_id=grant_id, type=type, actor=actor, at=at,
            detail=event.detail,
        ),
    )  # fmt: skip


@dataclass(frozen=True)
class NewEvent:
    """One audit event of a batch (`add_events`)."""

    grant_id: str
    type: str
    detail: dict[str, Any]


# `add_events`' statements, built once (their cache keys are memoized with them).
_EVENTS: Final = cast(Table, GrantEvent.__table__)
_INSERT_EVENTS_IN_ORDER: Final = insert(_EVENTS).returning(
    _EVENTS.c.id, sort_by_parameter_order=True
)
_INSERT_EVENTS_SQLITE: Final = insert(_EVENTS).returning(_EVENTS.c.id)


async def add_events(
    session: AsyncSession, events: Sequence[NewEvent], *, at: datetime, actor: str
) -> None:
    """`add_event` for many events in one statement: a multi-row INSERT instead of a round
    trip per event (the reaper records hundreds at once). Core rather than ORM objects: cheaper
    for large batches (single events are cheaper through the ORM; figures: docs/bench)."""
    if not events:
        return
    # On SQLite, SQLAlchemy cannot promise RETURNING's row order, so with
    # `sort_by_parameter_order` it would send one INSERT per event (a round trip to aiosqlite's
    # thread each). A multi-row INSERT there numbers its rows in VALUES order (ascending ids
    # under the one writer's lock), so its ids, sorted, are the events' in order.
    sqlite = session.get_bind().dialect.name == "sqlite"
    stmt = _INSERT_EVENTS_SQLITE if sqlite else _INSERT_EVENTS_IN_ORDER
    rows = [
        {"grant_id": e.grant_id, "at": at, "actor": actor, "type": e.type, "detail": e.detail}
        for e in events
    ]
    event_ids = (await session.execute(stmt, rows)).scalars().all()
    if sqlite:
        event_ids = sorted(event_ids)
    await add_outbox_rows(
        session,
        # A generator: never built when no notification target is configured.
        (
            EventWritten(e.grant_id, event_id, e.type, e.detail, at)
            for e, event_id in zip(events, event_ids, strict=True)
        ),
    )
    for event, event_id in zip(events, event_ids, strict=True):
        record_after_commit(
            session,
            audit_fields(
                event_id=event_id, grant_id=event.grant_id, type=event.type, actor=actor, at=at,
                detail=event.detail,
            ),
        )  # fmt: skip


async def get_grant(session: AsyncSession, grant_id: str) -> Grant | None:
    return await session.get(Grant, grant_id, populate_existing=True)


# The grant guard's read (`get_guard_rows`): the columns a decision needs, for a batch of ids.
# Built once: a statement object memoizes its cache key, so executing it again costs neither
# building the statement nor keying SQLAlchemy's compiled cache (per batch of decisions).
_GUARD_ROWS: Final = select(
    Grant.id,
    Grant.status,
    Grant.cluster,
    Grant.namespace,
    Grant.scanner,
    Grant.pods,
    Grant.containers,
    Grant.service_account,
    Grant.policy,
    Grant.expires_at,
).where(Grant.id.in_(bindparam("ids", expanding=True)))
GuardRow = Row[
    str, GrantStatus, str, str, str, list[str], list[str] | None, str, str, datetime
]  # fmt: skip


async def get_guard_rows(session: AsyncSession, grant_ids: Collection[str]) -> list[GuardRow]:
    """The rows (`_GUARD_ROWS`' columns, as named in `Grant`) of the grants of `grant_ids`
    that exist, in no particular order: one query per `IN_CHUNK` ids. Rows, not ORM objects:
    the guard only reads them, once per batch of decisions, and building and tracking
    instances would be most of the read's cost."""
    ids = sorted(grant_ids)
    rows: list[GuardRow] = []
    for start in range(0, len(ids), IN_CHUNK):
        result = await session.execute(_GUARD_ROWS, {"ids": ids[start : start + IN_CHUNK]})
        rows.extend(result.all())
    return rows


async def list_grants(
    session: AsyncSession,
    *,
    requester: str | None,
    status: GrantStatus | None,
    namespace: str | None,
    cluster: str | None,
    cursor: str | None,
    limit: int,
    or_policies: Collection[str] = (),
) -> list[Grant]:
    """Newest first; `cursor` is the last id of the previous page. Returns up to limit + 1 rows
    so the caller can tell whether another page exists. `or_policies`: with a `requester`, also
    the grants of these policies (an approver's view of the requests it may decide on)."""
    stmt = select(Grant)
    if requester is not None:
        mine = Grant.requester == requester
        stmt = stmt.where(or_(mine, Grant.policy.in_(or_policies)) if or_policies else mine)
    if status is not None:
        stmt = stmt.where(Grant.status == status)
    else:
        # Refused requests stay in the audit trail but out of the default listing: they are
        # the caller's input errors, not grants that existed (README "Grant states").
        stmt = stmt.where(Grant.status != GrantStatus.REJECTED)
    if namespace is not None:
        stmt = stmt.where(Grant.namespace == namespace)
    if cluster is not None:
        stmt = stmt.where(Grant.cluster == cluster)
    if cursor is not None:
        stmt = stmt.where(Grant.id < cursor)
    stmt = stmt.order_by(Grant.id.desc()).limit(limit + 1)
    return list((await session.scalars(stmt)).all())


async def list_events(session: AsyncSession, grant_id: str) -> list[GrantEvent]:
    stmt = select(GrantEvent).where(GrantEvent.grant_id == grant_id).order_by(GrantEvent.id)
    return list((await session.scalars(stmt)).all())


async def list_events_since(
    session: AsyncSession,
    *,
    since: datetime | None,
    after_id: int | None,
    settled_before: datetime,
    limit: int,
) -> list[GrantEvent]:
    """Events of every grant in id order (the audit feed): after `after_id`, at or after
    `since`, and older than `settled_before`."""
    stmt = select(GrantEvent).where(GrantEvent.at < settled_before)
    if since is not None:
        stmt = stmt.where(GrantEvent.at >= since)
    if after_id is not None:
        stmt = stmt.where(GrantEvent.id > after_id)
    stmt = stmt.order_by(GrantEvent.id).limit(limit)
    return list((await session.scalars(stmt)).all())


async def count_active_grants(session: AsyncSession) -> dict[tuple[str, str], int]:
    """`{(cluster, scanner): n}` of active grants (the metrics gauge)."""
    stmt = (
        select(Grant.cluster, Grant.scanner, func.count())
        .where(Grant.status == GrantStatus.ACTIVE)
        .group_by(Grant.cluster, Grant.scanner)
    )
    return {(row[0], row[1]): int(row[2]) for row in await session.execute(stmt)}


async def transition(
    session: AsyncSession,
    grant_id: str,
    *,
    source: GrantStatus,
    where: Sequence[ColumnElement[bool]] = (),
    now: datetime,
    **values: Any,
) -> bool:
    """A conditional UPDATE of one grant in `source` (to `values["status"]` if given); True if
    this call changed it."""
    if "status" in values:
        check_transition([source], values["status"])
    stmt = (
        update(Grant)
        .where(Grant.id == grant_id, Grant.status == source, *where)
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0) == 1)


async def end_provisioning(
    session: AsyncSession,
    grant_id: str,
    *,
    status: GrantStatus,
    error: str,
    now: datetime,
) -> bool:
    """provisioning -> failed or rejected, recording why."""
    return await transition(
        session,
        grant_id,
        source=GrantStatus.PROVISIONING,
        now=now,
        status=status,
        ended_at=now,
        last_error=error,
    )


async def _claim_one(
    session: AsyncSession,
    grant_id: str,
    *,
    sources: Sequence[GrantStatus],
    where: Sequence[ColumnElement[bool]] = (),
    now: datetime,
    **values: Any,
) -> ClaimedGrant | None:
    if "status" in values:
        check_transition(sources, values["status"])
    stmt = (
        update(Grant)
        .where(Grant.id == grant_id, Grant.status.in_(sources), *where)
        .values(updated_at=now, **values)
        .returning(*CLAIM_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    claimed = claimed_grants(await session.execute(stmt))
    return claimed[0] if claimed else None


async def claim_for_revocation(
    session: AsyncSession, grant_id: str, *, now: datetime, lease_until: datetime
) -> ClaimedGrant | None:
    """provisioning|active -> revoking (ending as `revoked`), leased to the caller."""
    return await _claim_one(
        session,
        grant_id,
        sources=(GrantStatus.PROVISIONING, GrantStatus.ACTIVE),
        now=now,
        status=GrantStatus.REVOKING,
        end_status=GrantStatus.REVOKED,
        attempts=1,
        next_attempt_at=lease_until,
    )


async def claim_revocation_attempt(
    session: AsyncSession, grant_id: str, *, now: datetime, lease_until: datetime
) -> ClaimedGrant | None:
    """Lease one more attempt at a `revoking` grant whose retry is due."""
    return await _claim_one(
        session,
        grant_id,
        sources=(GrantStatus.REVOKING,),
        where=[Grant.next_attempt_at <= now],
        now=now,
        attempts=Grant.attempts + 1,
        next_attempt_at=lease_until,
    )


async def finish_revocations(
    session: AsyncSession, grant_ids: Sequence[str], *, now: datetime
) -> dict[str, GrantStatus]:
    """revoking -> each grant's end status (`revoked` or `expired`), in a statement per chunk
    of ids: `{id: status}` of those this call finished (the others were finished by another
    claimant)."""
    finished: dict[str, GrantStatus] = {}
    for start in range(0, len(grant_ids), IN_CHUNK):
        chunk = grant_ids[start : start + IN_CHUNK]
        stmt = (
            update(Grant)
            .where(Grant.id.in_(chunk), Grant.status == GrantStatus.REVOKING)
            .values(
                status=func.coalesce(Grant.end_status, GrantStatus.REVOKED.value),
                ended_at=now,
                updated_at=now,
                next_attempt_at=None,
                last_error=None,
            )
            .returning(Grant.id, Grant.status)
            .execution_options(synchronize_session=False)
        )
        finished.update({row.id: GrantStatus(row.status) for row in await session.execute(stmt)})
    return finished


async def postpone_revocation(
    session: AsyncSession, grant_id: str, *, now: datetime, retry_at: datetime, error: str
) -> bool:
    return await transition(
        session,
        grant_id,
        source=GrantStatus.REVOKING,
        now=now,
        next_attempt_at=retry_at,
        last_error=error,
    )


async def extend_expiry(
    session: AsyncSession, grant_id: str, *, expires_at: datetime, now: datetime
) -> bool:
    """Move an active, not yet expired grant's end. Loses (False) to a racing expiry claim."""
    return await transition(
        session,
        grant_id,
        source=GrantStatus.ACTIVE,
        where=[Grant.expires_at > now],
        now=now,
        expires_at=expires_at,
    )
