"""The delivery worker: a guarded background task of the service (started by `open_services`
beside the reaper) that POSTs outbox rows to their targets.

Each configured target has a lane of its own, so a receiver that hangs or fails delays only its
own notifications. A lane's pass claims the due heads of its per-grant queues (`queue.py`;
committed), sends them concurrently outside any transaction, then settles each: delivered (a
2xx) -> deleted; failed -> retried after a jittered exponential backoff (up to the target's
`retry_max_seconds`), or dropped with a metric and a log line once the event is older than the
target's `give_up_after_seconds`. Passes follow each other while there is work; then the lane
sleeps until rows commit in this process, the targets change, or a poll interval passes (rows
written by other replicas or the guard, retries coming due).

A supervisor starts and ends lanes as targets come and go (`NotificationTargets.replace`),
counts the backlog for the metrics, and settles rows of targets no longer configured (dropped
after a day unless the target comes back).

It shares nothing with the request path but the database: a receiver that hangs holds up only
its own deliveries (each bounded by the target's timeout), never a grant request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx

from app.backoff import jittered_backoff_seconds
from app.db.engine import Database
from app.notifications import queue
from app.notifications.payloads import SIGNATURE_HEADER, Notification, render, signature
from app.notifications.queue import ClaimedRow
from app.notifications.targets import NotificationTargets, Target
from app.observability.metrics import ScangateMetrics

log = logging.getLogger("scangate.notifications")

POLL_SECONDS: Final = 1.0
# Rows a lane claims, and sends at once (heads of as many grants). All are sent together, so
# each attempt ends within the target's timeout, inside the lease below: a lease running out
# under a slow receiver would let another replica send the same rows again.
BATCH_SIZE: Final = 16
# Beyond the target's timeout: how long a claimed attempt is this replica's alone.
_LEASE_MARGIN_SECONDS: Final = 5.0
# Rows of a target no longer configured: looked at this often, dropped after this long.
_UNKNOWN_TARGET_CHECK: Final = timedelta(seconds=60)
_UNKNOWN_TARGET_GIVE_UP: Final = timedelta(days=1)
_UNKNOWN_TARGET: Final = "target not configured"
_MAX_FAILURE_BACKOFF_SECONDS: Final = 30.0
_STOP_GRACE_SECONDS: Final = 2.0
_USER_AGENT: Final = "scangate-notifications"


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _sleep_on(event: asyncio.Event, seconds: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)
    event.clear()


class NotificationWorker:
    def __init__(
        self,
        db: Database,
        targets: NotificationTargets,
        *,
        metrics: ScangateMetrics | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._db = db
        self._targets = targets
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        # Redirects are not followed: the signed body would go wherever a receiver points.
        self._http = httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": _USER_AGENT})
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._wakeups: list[asyncio.Event] = []

    async def start(self) -> None:
        if self._supervisor is None:
            self._stopping = False
            self._supervisor = asyncio.create_task(self._supervise(), name="scangate-notifications")

    async def stop(self) -> None:
        tasks = [t for t in (self._supervisor, *self._lanes.values()) if t is not None]
        self._supervisor = None
        self._stopping = True
        for event in self._wakeups:
            event.set()
        if tasks:
            # Deliveries in flight are cancelled after a grace period: their rows' leases run
            # out and they are sent again (at least once).
            _, pending = await asyncio.wait(tasks, timeout=_STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._lanes.clear()
        await self._http.aclose()

    # -- supervisor ---------------------------------------------------------------------------

    async def _supervise(self) -> None:
        changed = self._subscribe(rows=False)
        next_orphan_check = time.monotonic()
        log.info("notification worker started")
        while not self._stopping:
            self._start_lanes()
            if self._targets.configured:
                try:
                    await self._count_backlog()
                    if time.monotonic() >= next_orphan_check:
                        next_orphan_check = time.monotonic() + _UNKNOWN_TARGET_CHECK.total_seconds()
                        await self._settle_orphans()
                except Exception:
                    log.exception("notification worker: counting or settling rows failed")
            # With no target configured, nothing is read until a reload adds one.
            await _sleep_on(changed, self._poll_seconds if self._targets.configured else None)
        log.info("notification worker stopped")

    def _subscribe(self, *, rows: bool) -> asyncio.Event:
        event = self._targets.subscribe(rows=rows)
        self._wakeups.append(event)
        return event

    def _start_lanes(self) -> None:
        for name, task in list(self._lanes.items()):
            if task.done():
                del self._lanes[name]
        for name in self._targets.names:
            if name not in self._lanes:
                self._lanes[name] = asyncio.create_task(
                    self._lane(name), name=f"scangate-notifications-{name}"
                )

    async def _settle_orphans(self) -> None:
        """Rows of targets a reload removed: kept for a while in case the target returns."""
        now = _utcnow()
        async with self._db.session() as session:
            claimed = await queue.claim_due(
                session, target=None, exclude=self._targets.names, now=now,
                lease_until=now + _UNKNOWN_TARGET_CHECK, limit=BATCH_SIZE * 32,
            )  # fmt: skip
        if claimed:
            outcomes = dict.fromkeys((c.id for c in claimed), _UNKNOWN_TARGET)
            await self._settle(claimed, outcomes, None)

    async def _count_backlog(self) -> None:
        if self._metrics is None:
            return
        async with self._db.session() as session:
            counts = await queue.backlog(session)
        self._metrics.set_notification_backlog(self._targets.names, counts)

    # -- one lane per target ------------------------------------------------------------------

    async def _lane(self, name: str) -> None:
        wakeup = self._subscribe(rows=True)
        failures = 0
        try:
            while not self._stopping:
                target = self._targets.get(name)
                if target is None:
                    return  # removed by a reload; its rows are the supervisor's now
                try:
                    claimed = await self.run_pass(target)
                    failures = 0
                    if claimed == BATCH_SIZE:
                        continue  # more is due
                    wait = self._poll_seconds
                except Exception:
                    # Guarded: a lane must outlive database outages and its own bugs.
                    failures += 1
                    wait = jittered_backoff_seconds(failures + 1, _MAX_FAILURE_BACKOFF_SECONDS)
                    log.exception("notifications to %s: pass failed; next in %.0f s", name, wait)
                await _sleep_on(wakeup, wait)
        finally:
            self._targets.unsubscribe(wakeup)
            self._wakeups.remove(wakeup)

    async def run_pass(self, target: Target) -> int:
        """Claim, send and settle one batch of `target`'s notifications; how many it claimed."""
        now = _utcnow()
        lease = timedelta(seconds=target.timeout_seconds + _LEASE_MARGIN_SECONDS)
        async with self._db.session() as session:
            claimed = await queue.claim_due(
                session, target=target.name, now=now, lease_until=now + lease, limit=BATCH_SIZE
            )
            notifications = await queue.load_notifications(session, claimed) if claimed else {}
        if claimed:
            outcomes = await self._send_all(target, claimed, notifications)
            # Settled under the target they were sent to, even if a reload removed it meanwhile.
            await self._settle(claimed, outcomes, target)
        return len(claimed)

    async def _send_all(
        self, target: Target, claimed: Sequence[ClaimedRow], notifications: dict[int, Notification]
    ) -> dict[int, str | None]:
        """{row id: None (delivered) or why it failed}."""

        async def send(row: ClaimedRow) -> tuple[int, str | None]:
            notification = notifications.get(row.id)
            if notification is None:
                return row.id, None  # its grant or event is gone: nothing left to say
            return row.id, await self._post(target, notification)

        return dict(await asyncio.gather(*(send(row) for row in claimed)))

    async def _post(self, target: Target, notification: Notification) -> str | None:
        body, content_type = render(notification, format=target.format, source=target.source)
        headers = {
            "Content-Type": content_type,
            "Scangate-Event": notification.event,
            "Scangate-Event-Id": notification.delivery_id,
        }
        if target.secret is not None:
            headers[SIGNATURE_HEADER] = signature(target.secret, body, int(time.time()))
        try:
            response = await self._http.post(
                target.url, content=body, headers=headers, timeout=target.timeout_seconds
            )
        except httpx.TimeoutException:
            error: str | None = f"no answer within {target.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            # The exception's class only: its text may quote the URL (a credential for Slack).
            error = f"connection failed ({type(exc).__name__})"
        else:
            error = None if response.is_success else f"HTTP {response.status_code}"
        if self._metrics is not None:
            self._metrics.notification_attempted(target.name, delivered=error is None)
        return error

    async def _settle(
        self,
        claimed: Sequence[ClaimedRow],
        outcomes: Mapping[int, str | None],
        target: Target | None,
    ) -> None:
        """Delete, postpone or give up each row: `target` is the one they were sent to, None
        for rows of a target no longer configured (`_settle_orphans`)."""
        now = _utcnow()
        finished: list[int] = []
        postponed: list[tuple[ClaimedRow, datetime, str]] = []
        for row in claimed:
            error = outcomes[row.id]
            if error is None:
                finished.append(row.id)
                continue
            give_up = (
                timedelta(seconds=target.give_up_after_seconds)
                if target is not None
                else _UNKNOWN_TARGET_GIVE_UP
            )
            if now - row.created_at >= give_up:
                finished.append(row.id)
                self._given_up(row, error)
            elif target is None:
                postponed.append((row, now + _UNKNOWN_TARGET_CHECK, error))
            else:
                delay = jittered_backoff_seconds(row.attempts, target.retry_max_seconds)
                postponed.append((row, now + timedelta(seconds=delay), error))
        async with self._db.session() as session:
            await queue.delete_rows(session, finished)
            for row, retry_at, error in postponed:
                await queue.postpone(session, row.id, retry_at=retry_at, error=error)
        for row, retry_at, error in postponed:
            log.info(
                "notification %s (grant %s, %s) to %s failed (attempt %d): %s; retrying at %s",
                row.event_id, row.grant_id, row.event, row.target, row.attempts, error,
                retry_at.isoformat(timespec="seconds"),
            )  # fmt: skip

    def _given_up(self, row: ClaimedRow, error: str) -> None:
        log.warning(
            "notification %s (grant %s, %s) to %s given up after %d attempt(s) since %s: %s",
            row.event_id, row.grant_id, row.event, row.target, row.attempts,
            row.created_at.isoformat(timespec="seconds"), error,
        )  # fmt: skip
        if self._metrics is not None:
            self._metrics.notification_given_up(row.target)
