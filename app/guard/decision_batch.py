"""Group commit of the guard's decisions: concurrent AdmissionReviews share one unit of work.

Each decision needs its grant read and, unless it is a dry run, its audit event committed
before the answer goes out. One transaction per decision made the database round trips and
the ORM's per-transaction work most of the guard's cost per decision under load. Here a
request hands its review to the `DecisionBatcher` and waits; the batcher takes every review
that has queued up, reads all their grants in one query, judges each, writes all their events
in one multi-row INSERT, commits, and only then answers them all. It starts as soon as a review
arrives and a batch slot is free, so a lone request waits for nobody: batches form only from
reviews that arrive while others are being carried out (as `app/grants/group_commit.py` does
for grant creation). On PostgreSQL two batches may be carried out at once, each as two
autocommit statements (`_unit`); on SQLite one, as a transaction.

What a decision sees does not weaken: every grant is read from the database by the batch,
after the review arrived, and judged against the clock read after that read, so a revoke
committed before the review came in (by any replica) is refused, exactly as with a transaction
per review. Nothing about a grant is cached between batches.

If a batch fails because the database is unavailable, every review in it fails with that
error (the endpoint answers 500, and kube-apiserver applies failurePolicy Fail). Any other
failure is retried one review per unit of work, so a review that cannot be recorded fails only
its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import Database
from app.db.errors import database_unavailable
from app.grants.clock import utcnow
from app.guard.decisions import Decision, judge
from app.guard.grant_lookup import load_grants, record_decisions
from app.guard.review import AdmissionRequest
from app.notifications import NotificationTargets
from app.settings_sections import PolicyConfig

log = logging.getLogger("scangate.guard")

# The most reviews per transaction: far above what kube-apiserver sends one replica at once,
# and it bounds the INSERT's size and how long one transaction holds SQLite's write lock.
MAX_BATCH: Final = 128
PARALLEL_BATCHES: Final = 2


class PolicyLookup(Protocol):
    """The policies in force, by name (a dict, or the configuration's policy engine)."""

    def get(self, name: str, /) -> PolicyConfig | None: ...


@dataclass
class _Pending:
    review: AdmissionRequest
    grant_id: str
    cluster: str
    done: asyncio.Future[Decision] = field(repr=False)


class DecisionBatcher:
    """Judges and records the reviews of grant identities, in groups. One per guard app."""

    def __init__(
        self,
        db: Database,
        policies: Callable[[], PolicyLookup],
        *,
        notifications: NotificationTargets | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._db = db
        # While any notification target is configured, the events' outbox rows must commit
        # with them: batches then run as transactions (`_unit`).
        self._notifications = notifications
        # The policies in force, by name, asked for again by each batch (the configuration
        # may be reloaded while the guard runs).
        self._policies = policies
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._flushers: set[asyncio.Task[None]] = set()
        # Batches carried out at once. PostgreSQL: two, so that the reviews arriving while
        # one batch waits for its round trips start theirs at once (the autocommit pool
        # holds two connections). SQLite has one connection: a second batch could only wait.
        self._parallel = 1 if db.autocommit_engine is None else PARALLEL_BATCHES

    async def decide(self, review: AdmissionRequest, grant_id: str, *, cluster: str) -> Decision:
        """The decision on `review` by grant `grant_id`'s identity, once its audit events (if
        any: dry runs leave none) have committed."""
        loop = asyncio.get_running_loop()
        pending = _Pending(review, grant_id, cluster, loop.create_future())
        self._queue.append(pending)
        # A flusher that found the queue empty is done at once (no await in between), though
        # its done callback has not yet removed it from the set.
        if sum(not f.done() for f in self._flushers) < self._parallel:
            flusher = loop.create_task(self._flush(), name="scangate-guard-decisions")
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        # A request cancelled before its batch starts is dropped (kube-apiserver gave up on
        # it, so nothing was admitted); once started, its decision is still recorded.
        return await pending.done

    async def drain(self) -> None:
        """Wait until every review handed over so far has been decided (at shutdown)."""
        while self._flushers:
            await asyncio.wait(list(self._flushers))

    async def _flush(self) -> None:
        batch: list[_Pending] = []
        try:
            while self._queue:
                batch = [p for p in self._queue[: self._max_batch] if not p.done.done()]
                del self._queue[: self._max_batch]
                if batch:
                    await self._decide_batch(batch)
                batch = []
        except BaseException as exc:
            # Cancelled (shutdown) or a bug: no request may wait forever.
            for pending in [*batch, *self._queue]:
                _fail(pending, exc)
            self._queue = []
            raise

    async def _decide_batch(self, batch: list[_Pending]) -> None:
        try:
            decisions = await self._judge_and_record(batch)
        except Exception as exc:
            if len(batch) == 1 or database_unavailable(exc):
                for pending in batch:
                    _fail(pending, exc)
                return
            log.warning(
                "a batch of %d guard decisions failed (%s); retrying them one by one",
                len(batch), type(exc).__name__,
            )  # fmt: skip
            for pending in batch:
                await self._decide_batch([pending])
            return
        for pending, decision in zip(batch, decisions, strict=True):
            if not pending.done.done():
                pending.done.set_result(decision)

    def _unit(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """The batch's unit of work. PostgreSQL: the read and the INSERT run as two statements
        on an autocommit connection, without BEGIN and COMMIT round trips (on a machine whose
        cores are busy, each round trip waits for the server process to be scheduled). That
        gives up nothing: the INSERT is atomic on its own, and in a transaction the read would
        not have locked the grants either (READ COMMITTED), so a revoke could commit between
        the read and the write just the same; the answers still go out only after the INSERT
        has returned. The session's commit then writes nothing but still logs the audit
        records (`app.observability.audit`).

        While notification targets are configured, a batch is a transaction on `db`'s own
        sessions instead: the events and their outbox rows (app/notifications) must commit
        together, or a crash between two autocommit statements could lose a notification."""
        notifying = self._notifications is not None and self._notifications.configured
        autocommit = self._db.autocommit_engine is not None and not notifying
        return self._db.autocommit_session() if autocommit else self._db.session()

    async def _judge_and_record(self, batch: list[_Pending]) -> list[Decision]:
        async with self._unit() as session:
            grants = await load_grants(session, {p.grant_id for p in batch})
            # Decision time: after the grants were read, so none is judged on a state older
            # than the review.
            now = utcnow()
            policies = self._policies()
            decisions: list[Decision] = []
            recorded: list[tuple[str, str, Decision]] = []
            for pending in batch:
                grant = grants.get(pending.grant_id)
                policy = policies.get(grant.policy) if grant is not None else None
                review = pending.review
                decision = judge(review, grant, policy, cluster=pending.cluster, now=now)
                decisions.append(decision)
                # Dry runs are judged but leave no trace (the webhook declares NoneOnDryRun).
                if grant is not None and not review.dry_run:
                    recorded.append((pending.grant_id, review.username, decision))
            await record_decisions(session, recorded, at=now)
        return decisions


def _fail(pending: _Pending, exc: BaseException) -> None:
    if not pending.done.done():
        if isinstance(exc, asyncio.CancelledError):
            pending.done.cancel()
        else:
            pending.done.set_exception(exc)
