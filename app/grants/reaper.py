"""The reaper: ends grants on time and cleans up after crashes.

One pass (`ReaperPass.run`) does four jobs, each in short transactions that never stay open
across a cluster call:
1. expire: claim `active` grants past their expiry (`-> revoking`, ending `expired`), delete
   their objects, finish them;
2. retry: `revoking` grants whose retry time (or a dead claimant's lease) has come;
3. stale provisioning: grants still `provisioning` after the timeout belonged to a request
   that died mid-create: mark them `failed` and delete whatever it had created;
4. sweep (every `sweep_interval_seconds`): labelled objects of grants that are not live.

Several replicas may run reapers on one database: every claim is a conditional UPDATE, so each
grant is claimed, and ended, by exactly one of them.

`Reaper` runs passes in the app lifespan. Between passes it sleeps until the next moment work
is due (the earliest expiry, retry or provisioning timeout), not a fixed poll, so revocation lag
is the time a pass takes; `wake()` (called when a grant is created, activated or a revocation is
deferred) makes it recompute that moment. `run_once` is `scangate reap --once`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from app.db.engine import Database
from app.grants import reaper_queries, repository
from app.grants.clock import utcnow
from app.grants.repository import ClaimedGrant
from app.grants.revocation import REAPER_ACTOR, carry_out_revocations, lease_until
from app.grants.sweep import sweep_cluster
from app.kube.clusters import ClusterRegistry, ClusterSettings
from app.kube.errors import KubeError
from app.observability.metrics import ScangateMetrics
from app.settings import Settings

log = logging.getLogger(__name__)

# Grants claimed per statement; a pass loops until none are left. Large, because grants that
# expire together should lose access together (a batch deletes all its ServiceAccounts before
# anything else), and small enough to end well within the claim's lease.
BATCH_SIZE: Final = 500
# Cluster calls at once. Half the cluster client's pool (64), so API requests still get through
# while the reaper works through a mass expiry.
CONCURRENCY: Final = 32
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
    errors: list[str] = field(default_factory=list)

    def add(self, other: ReapReport) -> None:
        self.expired += other.expired
        self.revoked += other.revoked
        self.deferred += other.deferred
        self.failed_provisioning += other.failed_provisioning
        self.swept += other.swept
        self.errors += other.errors


class ReaperPass:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clusters: ClusterRegistry,
        *,
        metrics: ScangateMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._db = db
        self._clusters = clusters
        self._metrics = metrics

    async def run(self, *, sweep: bool) -> ReapReport:
        started = time.perf_counter()
        report = await self._run_steps(sweep=sweep)
        if self._metrics is not None:
            self._metrics.reaper_pass_finished(time.perf_counter() - started, len(report.errors))
        return report

    async def _run_steps(self, *, sweep: bool) -> ReapReport:
        report = ReapReport()
        steps: list[tuple[str, Callable[[ReapReport], Awaitable[None]]]] = [
            ("expire", self._expire),
            ("retry revocations", self._retry_revocations),
            ("fail stale provisioning", self._fail_stale_provisioning),
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
        return min(candidates)

    async def _expire(self, report: ReapReport) -> None:
        while True:
            now = utcnow()
            async with self._db.session() as session:
                claimed = await reaper_queries.claim_expired(
                    session, now=now, lease_until=lease_until(now), limit=BATCH_SIZE
                )
                await repository.add_events(
                    session,
                    [
                        repository.NewEvent(
                            grant.id, "revoking", {"reason": "expired", "end_status": "expired"}
                        )
                        for grant in claimed
                    ],
                    at=now,
                    actor=REAPER_ACTOR,
                )
            statuses = await self._end_all(claimed)
            report.expired += statuses.count("expired")
            report.deferred += statuses.count("revoking")
            if len(claimed) < BATCH_SIZE:
                return

    async def _retry_revocations(self, report: ReapReport) -> None:
        while True:
            now = utcnow()
            async with self._db.session() as session:
                claimed = await reaper_queries.claim_due_revocations(
                    session, now=now, lease_until=lease_until(now), limit=BATCH_SIZE
                )
            statuses = await self._end_all(claimed)
            report.expired += statuses.count("expired")
            report.revoked += statuses.count("revoked")
            report.deferred += statuses.count("revoking")
            if len(claimed) < BATCH_SIZE:
                return

    async def _fail_stale_provisioning(self, report: ReapReport) -> None:
        timeout = self._settings.reaper.provisioning_timeout_seconds
        error = f"provisioning did not finish within {timeout} s (the request was interrupted)"
        while True:
            now = utcnow()
            async with self._db.session() as session:
                stale = await reaper_queries.fail_stale_provisioning(
                    session,
                    created_before=now - timedelta(seconds=timeout),
                    now=now,
                    error=error,
                    limit=BATCH_SIZE,
                )
                for grant in stale:
                    await repository.add_event(
                        session,
                        grant.id,
                        at=now,
                        actor=REAPER_ACTOR,
                        type="failed",
                        detail={"error": error},
                    )
            for grant in stale:
                log.warning("grant %s: %s; deleting its objects", grant.id, error)
                if self._metrics is not None:
                    self._metrics.grant_failed(grant.cluster, grant.scanner)
            await self._bounded(self._delete_objects, stale)
            report.failed_provisioning += len(stale)
            if len(stale) < BATCH_SIZE:
                return

    async def _sweep(self, report: ReapReport) -> None:
        for name in self._clusters.names():
            # Each cluster on its own: one unreachable cluster must not shield the others.
            try:
                swept = await sweep_cluster(
                    self._db, self._clusters.get(name), self._policy_namespaces(name)
                )
            except KubeError as exc:
                log.warning("reaper: sweep of cluster %s failed: %s", name, exc)
                report.errors.append(f"sweep {name}: {exc}")
                continue
            report.swept += swept
            if self._metrics is not None:
                self._metrics.orphans_swept_in(name, swept)

    def _policy_namespaces(self, cluster: str) -> set[str]:
        """Namespaces policies name exactly for `cluster`: where to look for orphans if scangate
        may not list Roles cluster-wide, even before any grant has targeted them."""
        return {
            namespace
            for policy in self._settings.policies
            if "*" in policy.clusters or cluster in policy.clusters
            for namespace in policy.namespaces
            if "*" not in namespace
        }

    async def _delete_objects(self, grant: ClaimedGrant) -> str:
        try:
            await self._clusters.get(grant.cluster).delete_grant_objects(grant.id, grant.namespace)
        except (KeyError, KubeError) as exc:
            # The grant is failed (not live), so the next sweep removes what is left.
            log.warning("grant %s: cleanup deferred to the sweep: %s", grant.id, exc)
        return "failed"

    async def _end_all(self, claimed: Sequence[ClaimedGrant]) -> list[str]:
        try:
            return await carry_out_revocations(
                self._db,
                self._clusters,
                claimed,
                actor=REAPER_ACTOR,
                retry_max_seconds=self._settings.reaper.revoke_retry_max_seconds,
                concurrency=CONCURRENCY,
                metrics=self._metrics,
            )
        except Exception:
            # Recording the outcomes failed (the database): the leases run out and the retry
            # job picks the grants up again; deleting their objects twice is harmless.
            log.exception("reaper: ending %d grants failed", len(claimed))
            return ["error"] * len(claimed)

    async def _bounded(
        self, work: Callable[[ClaimedGrant], Awaitable[str]], grants: Sequence[ClaimedGrant]
    ) -> list[str]:
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(grant: ClaimedGrant) -> str:
            async with semaphore:
                return await work(grant)

        results = await asyncio.gather(*(one(g) for g in grants), return_exceptions=True)
        statuses: list[str] = []
        for grant, result in zip(grants, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation and friends are not ours to swallow
                # The lease runs out and the retry job picks the grant up again.
                log.error("grant %s: ending it failed", grant.id, exc_info=result)
                statuses.append("error")
            else:
                statuses.append(result)
        return statuses


class Reaper:
    """The reaper as a guarded background task of one app (`app.state.reaper`)."""

    def __init__(self, state: Any) -> None:
        self._state = state
        self._wakeup = asyncio.Event()
        # When the current sleep ends; None while a pass runs.
        self._asleep_until: datetime | None = None
        # The earliest due moment reported by wake() while a pass ran: that pass may have read
        # the next due moment before the new work was committed, so it sleeps no longer.
        self._due_during_pass: datetime | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.last_report: ReapReport | None = None
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

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="scangate-reaper")

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

    async def _run(self) -> None:
        state = self._state
        reaper_pass = ReaperPass(
            state.settings, state.db, state.clusters, metrics=getattr(state, "metrics", None)
        )
        sweep_interval = timedelta(seconds=state.settings.reaper.sweep_interval_seconds)
        next_sweep = utcnow()  # sweep on the first pass: a restart is when orphans appear
        failures = 0
        log.info("reaper started")
        while not self._stopping:
            self._wakeup.clear()  # a wake() without a due moment during the pass: another
            self._due_during_pass = None
            try:
                sweep = utcnow() >= next_sweep
                report = self.last_report = await reaper_pass.run(sweep=sweep)
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
                    delay = max(delay, min(_MAX_FAILURE_BACKOFF_SECONDS, 2.0**failures))
            except Exception:
                # Guarded: the reaper must outlive database outages and its own bugs.
                failures += 1
                delay = min(_MAX_FAILURE_BACKOFF_SECONDS, 2.0**failures)
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


def cluster_settings(settings: Settings) -> list[ClusterSettings]:
    return [
        ClusterSettings(
            name=c.name,
            kubeconfig=c.kubeconfig,
            context=c.context,
            server=c.server,
            grants_namespace=c.grants_namespace,
        )
        for c in settings.clusters
    ]


async def run_once(settings: Settings) -> ReapReport:
    """One full pass (sweep included) with its own database engine and cluster clients."""
    db = Database(settings.database_url)
    clusters = await ClusterRegistry.from_settings(cluster_settings(settings))
    try:
        return await ReaperPass(settings, db, clusters).run(sweep=True)
    finally:
        await clusters.aclose()
        await db.dispose()
