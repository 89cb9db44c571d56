"""The reaper: ends grants on time and cleans up after crashes.

One pass (`ReaperPass.run`) does four jobs, each a `GrantEnder` step repeated batch by
batch, in short transactions that never stay open across a cluster call:
1. expire: claim `active` grants past their expiry (`-> revoking`, ending `expired`), delete
   their objects, finish them (`GrantEnder.expire_due`);
2. retry: `revoking` grants whose retry time (or a dead claimant's lease) has come;
3. stale provisioning: grants still `provisioning` after the timeout belonged to a request
   that died mid-create: mark them `failed` and delete whatever it had created;
4. sweep (every `sweep_interval_seconds`): labelled objects of grants that are not live;
5. approval timeouts: `pending_approval` grants past their approval deadline end
   `approval_expired` (`GrantApprovals.expire_overdue`; nothing to delete);
0. once per configuration generation (the start of the service, each reload, `scangate reap
   --once`), before the rest: revoke active grants that no policy allows any more, and deny
   pending ones (`GrantApprovals.deny_disallowed`).

Several replicas may run reapers on one database: every claim is a conditional UPDATE, so each
grant is claimed, and ended, by exactly one of them.

`Reaper` runs passes in the app lifespan. Between passes it sleeps until the next moment work
is due (the earliest expiry, retry or provisioning timeout), not a fixed poll, so revocation lag
is the time a pass takes; `wake()` (called when a grant is created, activated or a revocation is
deferred) makes it recompute that moment. `app.main.reap_once` is `scangate reap --once`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from app.db.engine import Database
from app.db.models import GrantStatus
from app.grants import reaper_queries
from app.grants.approvals import GrantApprovals
from app.grants.clock import utcnow
from app.grants.ending import GrantEnder
from app.grants.revocation import backoff_seconds
from app.kube.clusters import ClusterRegistry
from app.kube.errors import KubeError
from app.observability.metrics import ScangateMetrics
from app.settings import Settings

log = logging.getLogger(__name__)

# Grants claimed per statement; a pass loops until none are left. Large, because grants that
# expire together should lose access together (a batch deletes all its RoleBindings before
# anything else), and small enough to end well within the claim's lease.
BATCH_SIZE: Final = 500
# Waking a hair after the due moment, so the claim's `expires_at <= now` already holds.
_WAKE_SLACK_SECONDS: Final = 0.005
_MAX_FAILURE_BACKOFF_SECONDS: Final = 30.0
_STOP_GRACE_SECONDS: Final = 2.0


@dataclass
class ReapReport:
    """What one pass did (printed by `scangate reap --once`)."""

    expired: int = 0
    revoked: int = 0  # `revoking` grants finished on a retry
    deferred: int = 0  # attempts that failed and were rescheduled
    failed_provisioning: int = 0
    swept: int = 0
    disallowed: int = 0  # active grants ended because no policy allows them any more
    approval_expired: int = 0  # pending grants past their approval deadline
    denied: int = 0  # pending grants no policy allows any more
    errors: list[str] = field(default_factory=list)

    def add(self, other: ReapReport) -> None:
        self.expired += other.expired
        self.revoked += other.revoked
        self.deferred += other.deferred
        self.failed_provisioning += other.failed_provisioning
        self.swept += other.swept
        self.disallowed += other.disallowed
        self.approval_expired += other.approval_expired
        self.denied += other.denied
        self.errors += other.errors


class ReaperPass:
    """One pass over the due work, each job a `GrantLifecycle` step repeated batch by batch."""

    def __init__(
        self,
        ender: GrantEnder,
        approvals: GrantApprovals,
        settings: Settings,
        db: Database,
        clusters: ClusterRegistry,
        *,
        metrics: ScangateMetrics | None = None,
    ) -> None:
        self._ender = ender
        self._approvals = approvals
        self._settings = settings
        self._db = db
        self._clusters = clusters
        self._metrics = metrics
        # The configuration generation whose policies the active grants were last checked
        # against (None: not yet); a reload makes a new one, which is checked on the next pass.
        self._checked_generation: int | None = None

    async def run(self, *, sweep: bool) -> ReapReport:
        started = time.perf_counter()
        report = await self._run_steps(sweep=sweep)
        if self._metrics is not None:
            self._metrics.reaper_pass_finished(time.perf_counter() - started, len(report.errors))
        return report

    async def _run_steps(self, *, sweep: bool) -> ReapReport:
        report = ReapReport()
        steps: list[tuple[str, Callable[[ReapReport], Awaitable[None]]]] = []
        if self._checked_generation != self._ender.config_generation:
            steps.append(("revoke grants no policy allows", self._revoke_disallowed))
        steps += [
            ("expire", self._expire),
            ("retry revocations", self._retry_revocations),
            ("fail stale provisioning", self._fail_stale_provisioning),
            ("expire overdue approvals", self._expire_overdue_approvals),
        ]
        if sweep:
            steps.append(("sweep", self._sweep))
        for name, step in steps:
            # One failing job (say, the database blipped) must not starve the others.
            try:
                await step(report)
            except Exception as exc:
                log.exception("reaper: %s failed", name)
                report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return report

    async def next_due(self, *, next_sweep: datetime) -> datetime:
        async with self._db.session() as session:
            due = await reaper_queries.next_due(session)
        candidates = [next_sweep]
        candidates += [moment for moment in (due.expiry, due.retry) if moment is not None]
        if due.oldest_provisioning is not None:
            timeout = timedelta(seconds=self._settings.reaper.provisioning_timeout_seconds)
            candidates.append(due.oldest_provisioning + timeout)
        if due.approval_deadline is not None:
            candidates.append(due.approval_deadline)
        return min(candidates)

    async def _revoke_disallowed(self, report: ReapReport) -> None:
        # Read before the check: a reload landing during it is checked again on the next pass.
        generation = self._ender.config_generation
        report.disallowed += await self._ender.revoke_disallowed()
        report.denied += await self._approvals.deny_disallowed()
        # Only once it succeeded: a failure (the database) is retried on the next pass.
        self._checked_generation = generation

    async def _expire(self, report: ReapReport) -> None:
        while True:
            outcomes = await self._ender.expire_due(limit=BATCH_SIZE)
            report.expired += outcomes.count(GrantStatus.EXPIRED)
            report.deferred += outcomes.count(GrantStatus.REVOKING)
            if len(outcomes) < BATCH_SIZE:
                return

    async def _retry_revocations(self, report: ReapReport) -> None:
        while True:
            outcomes = await self._ender.retry_due(limit=BATCH_SIZE)
            report.expired += outcomes.count(GrantStatus.EXPIRED)
            report.revoked += outcomes.count(GrantStatus.REVOKED)
            report.deferred += outcomes.count(GrantStatus.REVOKING)
            if len(outcomes) < BATCH_SIZE:
                return

    async def _fail_stale_provisioning(self, report: ReapReport) -> None:
        while True:
            failed = await self._ender.fail_stale(limit=BATCH_SIZE)
            report.failed_provisioning += failed
            if failed < BATCH_SIZE:
                return

    async def _expire_overdue_approvals(self, report: ReapReport) -> None:
        while True:
            ended = await self._approvals.expire_overdue(limit=BATCH_SIZE)
            report.approval_expired += ended
            if ended < BATCH_SIZE:
                return

    async def _sweep(self, report: ReapReport) -> None:
        for name in self._clusters.names():
            # Each cluster on its own: one unreachable cluster must not shield the others.
            try:
                report.swept += await self._ender.sweep(name)
            except KubeError as exc:
                log.warning("reaper: sweep of cluster %s failed: %s", name, exc)
                report.errors.append(f"sweep {name}: {exc}")


class Reaper:
    """The reaper as a guarded background task of one app (`Services.reaper`). Built before the
    lifecycle (which tells it about new due moments through `wake`), started with a pass."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._wakeup = asyncio.Event()
        # When the current sleep ends; None while a pass runs.
        self._asleep_until: datetime | None = None
        # The earliest due moment reported by wake() while a pass ran: that pass may have read
        # the next due moment before the new work was committed, so it sleeps no longer.
        self._due_during_pass: datetime | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # Since start: what this replica did (operators and the replica tests read it).
        self.totals = ReapReport()

    def wake(self, due: datetime | None = None) -> None:
        """Recompute when the next work is due (a sooner expiry may have appeared).

        `due` is when the new work becomes due. If the reaper is asleep and will wake by then
        anyway, nothing happens: every grant created would otherwise cost a whole pass (a
        handful of claims and queries) that finds nothing to do.
        """
        if due is None:
            self._wakeup.set()
            return
        asleep_until = self._asleep_until
        if asleep_until is None:
            # Mid-pass: the pass sleeps until this moment at the latest. Waking it now would
            # cost a pass per grant created under load, each one finding nothing to do.
            pending = self._due_during_pass
            self._due_during_pass = due if pending is None else min(pending, due)
        elif due < asleep_until:
            self._wakeup.set()

    async def start(self, reaper_pass: ReaperPass) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(reaper_pass), name="scangate-reaper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        # A sleeping reaper exits at once. One mid-pass is cancelled after a grace period:
        # that is safe, because a claimed grant whose claimant vanishes is retried by any
        # reaper once its lease runs out.
        done, _ = await asyncio.wait({task}, timeout=_STOP_GRACE_SECONDS)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, reaper_pass: ReaperPass) -> None:
        sweep_interval = timedelta(seconds=self._settings.reaper.sweep_interval_seconds)
        next_sweep = utcnow()  # sweep on the first pass: a restart is when orphans appear
        failures = 0
        log.info("reaper started")
        while not self._stopping:
            self._wakeup.clear()  # a wake() without a due moment during the pass: another
            self._due_during_pass = None
            try:
                sweep = utcnow() >= next_sweep
                report = await reaper_pass.run(sweep=sweep)
                self.totals.add(report)
                if sweep:
                    next_sweep = utcnow() + sweep_interval
                due = await reaper_pass.next_due(next_sweep=next_sweep)
                delay = max(0.0, (due - utcnow()).total_seconds()) + _WAKE_SLACK_SECONDS
                # A job that keeps failing would otherwise leave its work "due now" and spin.
                # (Sweep failures do not count: the sweep is not due again until its interval.)
                failing = [e for e in report.errors if not e.startswith("sweep")]
                failures = failures + 1 if failing else 0
                if failures:
                    delay = max(delay, backoff_seconds(failures + 1, _MAX_FAILURE_BACKOFF_SECONDS))
            except Exception:
                # Guarded: the reaper must outlive database outages and its own bugs.
                failures += 1
                delay = backoff_seconds(failures + 1, _MAX_FAILURE_BACKOFF_SECONDS)
                log.exception("reaper pass failed; next try in %.0f s", delay)
            now = utcnow()
            wake_at = now + timedelta(seconds=delay)
            due_during_pass = self._due_during_pass
            if due_during_pass is not None:
                reported = due_during_pass + timedelta(seconds=_WAKE_SLACK_SECONDS)
                if reported < wake_at:
                    wake_at = max(now, reported)
                    delay = (wake_at - now).total_seconds()
            self._asleep_until = wake_at
            await self._sleep(delay)
            self._asleep_until = None
        log.info("reaper stopped")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
