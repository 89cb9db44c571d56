"""The statements of the grant writer's group commit (`group_commit.py`): many grants' rows
and audit events written at once, on PostgreSQL and on SQLite.

Notification outbox rows (app/notifications) for the events that some target wants are
written by the same statement (PostgreSQL) or transaction (SQLite) as the events; with no
target wanting them, the statements are exactly those without notifications.

Each batch holds writes of one kind: new `provisioning` grants with their `requested` events,
or activations with their `activated` events. A write is atomic (its row and its event, or
neither); the batch as a whole need not be.

PostgreSQL: one statement per batch, run outside a transaction (a statement is atomic on its
own, so no BEGIN and COMMIT round trips). A data-modifying CTE writes the grants and the events
are inserted for exactly the rows it returned. The rows come in as arrays (`unnest`), so the
statement's text is the same for every batch size: SQLAlchemy compiles it once and PostgreSQL
prepares it once.

SQLite: a short transaction of two statements (there are no round trips to save, and no
data-modifying CTEs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    Table,
    Text,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy import (
    cast as cast_to,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

from app.db.models import Grant, GrantEvent, GrantStatus, UTCDateTime
from app.notifications.outbox import OUTBOX, EventWritten, outbox_rows
from app.notifications.targets import NotificationTargets

_GRANTS: Final = cast(Table, Grant.__table__)
_EVENTS: Final = cast(Table, GrantEvent.__table__)
_EVENT_COLUMNS: Final = ("grant_id", "at", "actor", "type", "detail")


@dataclass(frozen=True)
class NewGrant:
    """A new `provisioning` grant (transient, not in any session) and its `requested` event."""

    grant: Grant
    actor: str
    detail: dict[str, Any]

    @property
    def grant_id(self) -> str:
        return self.grant.id


@dataclass(frozen=True)
class Activation:
    """provisioning -> active, and the `activated` event."""

    grant_id: str
    pods: list[str]
    at: datetime
    actor: str
    detail: dict[str, Any]
    # What the pods expose to an exec/debug grant; None for a sidecar grant.
    exposure: dict[str, Any] | None = None


Write = NewGrant | Activation


def event_row(write: Write) -> dict[str, Any]:
    if isinstance(write, NewGrant):
        return {
            "grant_id": write.grant.id, "at": write.grant.created_at, "actor": write.actor,
            "type": "requested", "detail": write.detail,
        }  # fmt: skip
    return {
        "grant_id": write.grant_id, "at": write.at, "actor": write.actor, "type": "activated",
        "detail": write.detail,
    }  # fmt: skip


def grant_row(grant: Grant) -> dict[str, Any]:
    return {column.key: getattr(grant, column.key) for column in _GRANTS.columns}


# -- PostgreSQL ---------------------------------------------------------------------------------


def _array_item(sql_type: TypeEngine[Any]) -> TypeEngine[Any]:
    """The element type a column's values travel in (JSON as its text, cast on arrival)."""
    if isinstance(sql_type, UTCDateTime | DateTime):
        return DateTime(timezone=True)
    if isinstance(sql_type, Integer):
        return Integer()
    return Text()


def _unnest(prefix: str, columns: Sequence[tuple[str, TypeEngine[Any]]]) -> TableValuedAlias:
    """`unnest(:prefix_a, :prefix_b, ...) AS prefix(a, b, ...)`: one row per array element."""
    # Cast explicitly: an array of NULLs (a column no new grant has a value for) has no type
    # PostgreSQL could infer.
    arrays = [
        cast_to(bindparam(f"{prefix}_{name}"), ARRAY(_array_item(sql_type)))
        for name, sql_type in columns
    ]
    return (
        func.unnest(*arrays)
        .table_valued(*(name for name, _ in columns))
        .render_derived(name=prefix)
    )


def _arrival(rows: TableValuedAlias, name: str, sql_type: TypeEngine[Any]) -> ColumnElement[Any]:
    column: ColumnElement[Any] = rows.c[name]
    return cast_to(column, JSON) if isinstance(sql_type, JSON) else column


# The columns each statement takes as arrays, with their SQL types (JSON travels as text).
_GRANT_ARRAYS: Final = [(c.key, c.type) for c in _GRANTS.columns]
_EVENT_ARRAYS: Final = [(name, _EVENTS.c[name].type) for name in _EVENT_COLUMNS]
_CHANGE_ARRAYS: Final[list[tuple[str, TypeEngine[Any]]]] = [
    ("grant_id", Text()),
    ("pods", JSON()),
    ("exposure", JSON()),
    ("at", UTCDateTime()),
]


# The outbox rows a batch wants, before their events' ids exist: joined to the events the
# statement inserted by grant id (a batch writes one event per grant).
_OUTBOX_ARRAYS: Final[list[tuple[str, TypeEngine[Any]]]] = [
    ("grant_id", Text()),
    ("target", Text()),
    ("event", Text()),
    ("at", UTCDateTime()),
]


def _events_for(written: Any, *, notify: bool = False) -> Any:
    """INSERT the events of the rows `written` (a CTE returning grant ids) returned; with
    `notify`, also their outbox rows (`outbox_*` arrays)."""
    events = _unnest("event", _EVENT_ARRAYS)
    chosen = select(*(_arrival(events, name, t) for name, t in _EVENT_ARRAYS)).join_from(
        events, written, written.c.id == events.c.grant_id
    )
    inserted = (
        insert(_EVENTS)
        .from_select(list(_EVENT_COLUMNS), chosen)
        .returning(_EVENTS.c.id, _EVENTS.c.grant_id)
    )
    if not notify:
        return inserted
    events_written = inserted.cte("events_written")
    wanted = _unnest("outbox", _OUTBOX_ARRAYS)
    queued = (
        insert(OUTBOX)
        .from_select(
            ["target", "grant_id", "event_id", "event", "created_at", "next_attempt_at",
             "attempts"],
            select(
                wanted.c.target, wanted.c.grant_id, events_written.c.id, wanted.c.event,
                wanted.c.at, wanted.c.at, literal(0, Integer()),
            ).join_from(wanted, events_written, events_written.c.grant_id == wanted.c.grant_id),
        )
        .returning(OUTBOX.c.id)
        .cte("outbox_written")
    )  # fmt: skip
    # PostgreSQL runs a data-modifying CTE to completion whether or not the query reads it.
    return select(events_written.c.id, events_written.c.grant_id).add_cte(queued)


def _postgresql_insert_statement(*, notify: bool) -> Any:
    rows = _unnest("grant", _GRANT_ARRAYS)
    written = (
        insert(_GRANTS)
        .from_select(
            [name for name, _ in _GRANT_ARRAYS],
            select(*(_arrival(rows, name, t) for name, t in _GRANT_ARRAYS)),
        )
        .returning(_GRANTS.c.id)
        .cte("written")
    )
    return _events_for(written, notify=notify)


def _postgresql_activation_statement(*, notify: bool) -> Any:
    changes = _unnest("change", _CHANGE_ARRAYS)
    written = (
        update(_GRANTS)
        .where(_GRANTS.c.id == changes.c.grant_id, _GRANTS.c.status == GrantStatus.PROVISIONING)
        .values(
            status=GrantStatus.ACTIVE,
            pods=cast_to(changes.c.pods, JSON),
            exposure=cast_to(changes.c.exposure, JSON),
            updated_at=changes.c.at,
        )
        .returning(_GRANTS.c.id)
        .cte("written")
    )
    return _events_for(written, notify=notify)


# {notify: statement}, compiled once each.
_POSTGRESQL_INSERT: Final = {n: _postgresql_insert_statement(notify=n) for n in (False, True)}
_POSTGRESQL_ACTIVATION: Final = {
    n: _postgresql_activation_statement(notify=n) for n in (False, True)
}


def _wanted_outbox_rows(
    writes: Sequence[Write], targets: NotificationTargets | None
) -> list[dict[str, Any]]:
    """The outbox rows of `writes` (their event ids not known yet: 0)."""
    if targets is None or not targets.configured:
        return []
    events = []
    for write in writes:
        row = event_row(write)
        events.append(EventWritten(row["grant_id"], 0, row["type"], row["detail"], row["at"]))
    return outbox_rows(targets, events)


def _arrays(
    prefix: str, columns: Sequence[tuple[str, TypeEngine[Any]]], rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The parameters of `_unnest(prefix, columns)` for `rows`: one array per column."""
    params: dict[str, Any] = {}
    for name, sql_type in columns:
        items = [row[name] for row in rows]
        if isinstance(sql_type, JSON):
            items = [json.dumps(item) for item in items]
        params[f"{prefix}_{name}"] = items
    return params


async def postgresql_writes(
    connection: AsyncConnection,
    writes: Sequence[Write],
    notifications: NotificationTargets | None = None,
) -> dict[str, int]:
    """Carry out writes of one kind in one statement; the event id of each grant written."""
    params = _arrays("event", _EVENT_ARRAYS, [event_row(w) for w in writes])
    wanted = _wanted_outbox_rows(writes, notifications)
    if wanted:
        rows = [{**row, "at": row["created_at"]} for row in wanted]
        params |= _arrays("outbox", _OUTBOX_ARRAYS, rows)
    if isinstance(writes[0], NewGrant):
        grants = [grant_row(cast(NewGrant, w).grant) for w in writes]
        params |= _arrays("grant", _GRANT_ARRAYS, grants)
        statement = _POSTGRESQL_INSERT[bool(wanted)]
    else:
        changes = [
            {"grant_id": a.grant_id, "pods": a.pods, "exposure": a.exposure, "at": a.at}
            for a in cast(Sequence[Activation], writes)
        ]
        params |= _arrays("change", _CHANGE_ARRAYS, changes)
        statement = _POSTGRESQL_ACTIVATION[bool(wanted)]
    result = await connection.execute(statement, params)
    return {grant_id: event_id for event_id, grant_id in result}


# -- SQLite ---------------------------------------------------------------------------------------


_SQLITE_EVENTS: Final = insert(_EVENTS).returning(_EVENTS.c.id, _EVENTS.c.grant_id)


async def sqlite_writes(
    connection: AsyncConnection,
    writes: Sequence[Write],
    notifications: NotificationTargets | None = None,
) -> dict[str, int]:
    """Carry out writes of one kind (the caller holds the transaction)."""
    if isinstance(writes[0], NewGrant):
        rows = [grant_row(cast(NewGrant, w).grant) for w in writes]
        await connection.execute(insert(_GRANTS), rows)
        written: Sequence[Write] = writes
    else:
        activations = cast(Sequence[Activation], writes)
        activated = await _sqlite_activate(connection, activations)
        written = [a for a in activations if a.grant_id in activated]
    if not written:
        return {}
    # An executemany that SQLAlchemy sends as one multi-row INSERT ("insertmanyvalues"), from
    # a statement compiled once. Its RETURNING rows come in no guaranteed order (asking for
    # parameter order would cost a statement per row here), so they name their grant.
    rows = [event_row(w) for w in written]
    result = await connection.execute(_SQLITE_EVENTS, rows)
    event_ids = {grant_id: event_id for event_id, grant_id in result}
    wanted = _wanted_outbox_rows(written, notifications)
    if wanted:
        for row in wanted:
            row["event_id"] = event_ids[row["grant_id"]]
        await connection.execute(insert(OUTBOX), wanted)
    return event_ids


async def _sqlite_activate(
    connection: AsyncConnection, activations: Sequence[Activation]
) -> set[str]:
    """One conditional UPDATE for all activations; the ids it changed."""
    ids = [a.grant_id for a in activations]
    pods = case({a.grant_id: literal(a.pods, JSON()) for a in activations}, value=_GRANTS.c.id)
    exposure = case(
        {a.grant_id: literal(a.exposure, JSON()) for a in activations}, value=_GRANTS.c.id
    )
    at = case({a.grant_id: literal(a.at, UTCDateTime()) for a in activations}, value=_GRANTS.c.id)
    stmt = (
        update(_GRANTS)
        .where(_GRANTS.c.id.in_(ids), _GRANTS.c.status == GrantStatus.PROVISIONING)
        .values(status=GrantStatus.ACTIVE, pods=pods, exposure=exposure, updated_at=at)
        .returning(_GRANTS.c.id)
    )
    return set((await connection.execute(stmt)).scalars())
