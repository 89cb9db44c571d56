"""Writing the outbox: the rows that make a grant event leave the service, in the same
transaction as the event itself, so an event is committed with its notifications or not at all
(a kill -9 right after the commit loses nothing; the worker finds the rows on restart).

The three writers of audit events call in here: `app.grants.repository.add_event` and
`add_events` (through the session, which `attach_outbox` gave the targets) and the grant
writer's group commit (`app.grants.batch_writes`, which takes the rows from `outbox_rows` and
inserts them in its own statement). With no target configured, or none wanting an event, nothing
is written: the request path then costs one dictionary lookup more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, insert
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import NotificationOutbox
from app.notifications.targets import NotificationTargets

OUTBOX: Final = cast(Table, NotificationOutbox.__table__)
_TARGETS_KEY: Final = "scangate.notifications.targets"
_WAKE_KEY: Final = "scangate.notifications.wake"


@dataclass(frozen=True)
class EventWritten:
    """An audit event just written (its id assigned), as the outbox sees it."""

    grant_id: str
    event_id: int
    type: str
    detail: Mapping[str, Any]
    at: datetime


def attach_outbox(db: Database, targets: NotificationTargets) -> None:
    """Make every session of `db` write outbox rows for the events `targets` want."""
    db.sessionmaker.configure(info={_TARGETS_KEY: targets})


def session_targets(session: AsyncSession) -> NotificationTargets | None:
    targets = session.info.get(_TARGETS_KEY)
    return targets if isinstance(targets, NotificationTargets) else None


def outbox_rows(
    targets: NotificationTargets | None, events: Iterable[EventWritten]
) -> list[dict[str, Any]]:
    """The outbox rows for `events`: one per event and target that wants it."""
    if targets is None or not targets.configured:
        return []
    rows: list[dict[str, Any]] = []
    for written in events:
        event, names = targets.route(written.type, written.detail)
        rows.extend(
            {
                "target": name, "grant_id": written.grant_id, "event_id": written.event_id,
                "event": event, "created_at": written.at, "next_attempt_at": written.at,
                "attempts": 0,
            }
            for name in names
        )  # fmt: skip
    return rows


async def add_outbox_rows(session: AsyncSession, events: Iterable[EventWritten]) -> None:
    """Queue the notifications of `events` in the session's transaction (if any are wanted)."""
    targets = session_targets(session)
    rows = outbox_rows(targets, events)
    if not rows:
        return
    await session.execute(insert(OUTBOX), rows)
    assert targets is not None
    _wake_after_commit(session, targets)


def _wake_after_commit(session: AsyncSession, targets: NotificationTargets) -> None:
    """Wake this process's worker once the rows are committed (before, it would not see them)."""
    sync_session = session.sync_session
    if sync_session.info.get(_WAKE_KEY):
        return
    sync_session.info[_WAKE_KEY] = True

    def wake(_session: Session) -> None:
        sync_session.info.pop(_WAKE_KEY, None)
        targets.wake()

    def forget(_session: Session) -> None:
        sync_session.info.pop(_WAKE_KEY, None)

    sa_event.listen(sync_session, "after_commit", wake, once=True)
    sa_event.listen(sync_session, "after_rollback", forget, once=True)
