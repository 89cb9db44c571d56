"""Group commit for the two writes on every grant's critical path.

Creating a grant writes twice: the `provisioning` row with its `requested` event (committed
before the first cluster call that creates anything) and the activation with its `activated`
event (after the last). As one ORM transaction each, those writes were most of scangate's CPU
per grant under load (SQLAlchemy's asyncio bridge, the unit of work, the driver's round
trips): more than the four cluster calls cost (measured: docs/bench/RESULTS.md).

Here concurrent requests share them. A request hands its write to the `GrantWriter` and waits
for it to commit; the writer carries out every write that has queued up meanwhile together:
the new grants in one statement, the activations in another (`batch_writes.py`; one statement
each on PostgreSQL, a short transaction each on SQLite). It starts as soon as a write arrives
and nothing is in flight, so a lone request waits for nobody: batches form only from writes
that arrive while one is being carried out (classic group commit). Each request is answered
only after the commit that holds its write, so the crash-safety rule of
`GrantLifecycle.provision_grant` holds unchanged.

If a batch fails because the database is unavailable, every write in it fails with that error
(as each would have on its own). Any other failure is retried one write per transaction, so a
write that cannot succeed fails only its own request.

Audit records: events are written here, outside any request's session, so the request logs
its own records once its write has committed (`record_committed`), with its request id.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from app.db.engine import Database
from app.db.errors import database_unavailable
from app.db.models import Grant
from app.grants.batch_writes import (
    Activation,
    NewGrant,
    Write,
    event_row,
    postgresql_writes,
    sqlite_writes,
)
from app.notifications.targets import NotificationTargets
from app.observability.audit import audit_fields, record_committed

log = logging.getLogger(__name__)

# The most writes per transaction. Large enough for any realistic burst; it bounds the
# statements' sizes (bind parameters) and how long one transaction holds its locks.
MAX_BATCH: Final = 128


@dataclass
class _Pending:
    write: Write
    # The id of the write's audit event once committed; None for an activation whose grant
    # had left `provisioning` (nothing written).
    done: asyncio.Future[int | None] = field(repr=False)


class GrantWriter:
    """The group-committing writer of one database. One per app (built by `open_services`)."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = MAX_BATCH,
        notifications: NotificationTargets | None = None,
    ) -> None:
        self._db = db
        # Whose outbox rows each write's event gets (app/notifications), in the same commit.
        self._notifications = notifications
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._in_flight: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def insert(self, grant: Grant, *, actor: str, detail: dict[str, Any]) -> None:
        """Insert `grant` (a new, transient `provisioning` grant) with its `requested` event;
        returns once committed."""
        written = await self._submit(NewGrant(grant, actor, detail))
        assert written  # an insert writes its row and event, or raises

    async def activate(
        self,
        grant_id: str,
        *,
        pods: list[str],
        exposure: dict[str, Any] | None = None,
        now: datetime,
        actor: str,
        detail: dict[str, Any],
    ) -> bool:
        """provisioning -> active (with the pods and what they expose) and its `activated`
        event, once committed. False (and no event) if the grant left `provisioning` meanwhile
        (revoked, or given up by the reaper)."""
        return await self._submit(Activation(grant_id, pods, now, actor, detail, exposure))

    async def drain(self) -> None:
        """Wait until every write handed over so far has been carried out (at shutdown)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher])

    async def _submit(self, write: Write) -> bool:
        """Hand `write` over and wait for its commit; False if it wrote nothing (an activation
        whose grant left `provisioning`). The audit record of its event is logged here, in the
        caller's task, so that it carries the caller's request id."""
        loop = asyncio.get_running_loop()
        pending = _Pending(write, loop.create_future())
        self._queue.append(pending)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(), name="scangate-grant-writer")
        # If this request is cancelled before its batch starts, the write is dropped; once
        # started it still commits (as if the process had died after the commit: the reaper
        # handles both outcomes).
        event_id = await pending.done
        if event_id is None:
            return False
        # The same fields as the event row written, so the two cannot differ.
        record_committed(audit_fields(event_id=event_id, **event_row(write)))
        return True

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = [p for p in self._queue[: self._max_batch] if not p.done.done()]
                del self._queue[: self._max_batch]
                self._in_flight = batch
                if batch:
                    await self._write(batch)
                self._in_flight = []
        except BaseException as exc:
            # Cancelled (shutdown) or a bug: no request may wait forever.
            for pending in [*self._in_flight, *self._queue]:
                _fail(pending, exc)
            self._in_flight, self._queue = [], []
            raise

    async def _write(self, batch: list[_Pending]) -> None:
        # Inserts and activations are separate transactions: each write only needs its own
        # row and event to be atomic, and this way one statement does each kind on PostgreSQL.
        inserts = [p for p in batch if isinstance(p.write, NewGrant)]
        activations = [p for p in batch if isinstance(p.write, Activation)]
        for group in (inserts, activations):
            if group:
                await self._write_group(group)

    async def _write_group(self, group: list[_Pending]) -> None:
        try:
            event_ids = await self._execute([p.write for p in group])
        except Exception as exc:
            if len(group) == 1 or database_unavailable(exc):
                for pending in group:
                    _fail(pending, exc)
                return
            log.warning(
                "a batch of %d grant writes failed (%s); retrying them one by one",
                len(group), type(exc).__name__,
            )  # fmt: skip
            for pending in group:
                await self._write_group([pending])
            return
        for pending in group:
            if not pending.done.done():
                pending.done.set_result(event_ids.get(pending.write.grant_id))

    async def _execute(self, writes: list[Write]) -> dict[str, int]:
        """Carry out writes of one kind; the event id of each grant that was written."""
        notifications = self._notifications
        if self._db.autocommit_engine is not None:
            # PostgreSQL: one statement, atomic on its own (no BEGIN and COMMIT round trips).
            async with self._db.autocommit_engine.connect() as connection:
                written = await postgresql_writes(connection, writes, notifications)
        else:
            async with self._db.engine.begin() as connection:
                written = await sqlite_writes(connection, writes, notifications)
        if notifications is not None and notifications.configured:
            # Committed: the worker may deliver them now. (Writes of one kind are events of one
            # type, so the first says whether any target wanted the batch's events.)
            first = event_row(writes[0])
            if notifications.route(first["type"], first["detail"])[1]:
                notifications.wake()
        return written


def _fail(pending: _Pending, exc: BaseException) -> None:
    if not pending.done.done():
        if isinstance(exc, asyncio.CancelledError):
            pending.done.cancel()
        else:
            pending.done.set_exception(exc)
