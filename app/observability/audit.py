"""Grant events as audit log records (logger `scangate.audit`).

The database's `grant_events` table is the audit trail (`GET /v1/grants/{id}/events`,
`GET /v1/events`); every event is also written to the log stream, so a log pipeline (SIEM)
receives it without polling. Events are written in two places: `app.grants.repository`
(`add_event`, `add_events`), which calls `record_after_commit`, and the grant writer's group
commit (`app.grants.group_commit`), whose callers log their records with `record_committed`
once the write has committed.

A record is emitted only once its transaction has committed: an event rolled back with its
transaction never happened, and must not appear in an audit log. The records wait in the
session's `info` until SQLAlchemy's `after_commit` for that session, and are dropped on
rollback. The listeners are attached to the session instance (not to the Session class), so
nothing here is global.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.observability.context import note_grant
from app.rfc3339 import format_rfc3339

audit_log = logging.getLogger("scangate.audit")

_PENDING: Final = "scangate.audit.pending"


def audit_fields(
    *, event_id: int, grant_id: str, type: str, actor: str, at: datetime, detail: dict[str, Any]
) -> dict[str, Any]:
    """The `audit` object of a record: the same fields as the API's event JSON."""
    return {
        "event_id": event_id,
        "grant_id": grant_id,
        "type": type,
        "actor": actor,
        "at": format_rfc3339(at),
        "detail": detail,
    }


def record_after_commit(session: AsyncSession, fields: dict[str, Any]) -> None:
    """Queue one audit record (built by `audit_fields`) until `session` commits."""
    sync_session = session.sync_session
    pending: list[dict[str, Any]] | None = sync_session.info.get(_PENDING)
    if pending is None:
        pending = sync_session.info[_PENDING] = []
        sa_event.listen(sync_session, "after_commit", _emit_pending)
        sa_event.listen(sync_session, "after_rollback", _drop_pending)
    # A copy: the caller's dict (and the event's JSON detail) may change before the commit.
    pending.append({**fields, "detail": dict(fields["detail"])})
    # The request that caused the event is about this grant (the access record says so).
    note_grant(str(fields["grant_id"]))


def record_committed(fields: dict[str, Any]) -> None:
    """Log one audit record whose event has already committed (the grants' group commit,
    `app.grants.group_commit`, writes events outside the request's session; the request logs
    them itself afterwards, so that they carry its request id)."""
    note_grant(str(fields["grant_id"]))
    _log(fields)


def _log(fields: dict[str, Any]) -> None:
    audit_log.info(
        "grant %s %s by %s", fields["grant_id"], fields["type"], fields["actor"],
        extra={"audit": fields},
    )  # fmt: skip


def _emit_pending(session: Session) -> None:
    pending: list[dict[str, Any]] = session.info.get(_PENDING) or []
    records, pending[:] = list(pending), []
    for fields in records:
        _log(fields)


def _drop_pending(session: Session) -> None:
    pending: list[dict[str, Any]] = session.info.get(_PENDING) or []
    pending.clear()
