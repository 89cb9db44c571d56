"""How grants end, for one grant or hundreds: built once per app (`open_services`) and used by
`GrantLifecycle.revoke_grant` (a caller's revocation) and by the reaper's pass (everything else).

    end_claimed       claimed (revoking) -> objects deleted -> revoked | expired
                      (or still revoking, retried after a backoff, when the cluster failed)
    expire_due        active past expiry -> revoking -> expired
    retry_due         revoking whose retry is due -> revoked | expired
    revoke_disallowed active, no policy allows it any more -> revoking -> revoked
    fail_stale        provisioning past the timeout -> failed (a request that died)
    sweep             objects labelled for a grant that is not live -> deleted

Every path that ends a grant goes through `end_claimed`: claim (committed by the caller),
delete the objects (`deletion.py`: the RoleBinding first), finish or postpone (committed), so
one grant and an expiry wave count their outcomes the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from app.db.engine import Database
from app.db.models import GrantStatus
from app.grants import reaper_queries, repository
from app.grants.clock import format_rfc3339, utcnow
from app.grants.deletion import delete_grants_objects
from app.grants.policy_recheck import DISALLOWED_REASON, GrantUse, disallowed_grants
from app.grants.repository import ClaimedGrant
from app.grants.revocation import REAPER_ACTOR, lease_until, retry_delay
from app.grants.sweep import policy_namespaces, sweep_cluster
from app.kube.clusters import ClusterRegistry
from app.observability.metrics import ScangateMetrics
from app.reload import LiveConfig

log = logging.getLogger(__name__)

# Cluster calls at once when many grants end together. Half the cluster client's pool, so API
# requests still get through while the reaper works through a mass expiry.
CONCURRENCY: Final = 32
# What ending a grant reports when another claimant finished it first (so that counting
# outcomes never counts one grant twice), or when recording the outcome failed.
ENDED_ELSEWHERE: Final = "ended-elsewhere"
NOT_RECORDED: Final = "error"


class GrantEnder:
    def __init__(
        self,
        *,
        config: LiveConfig,
        db: Database,
        clusters: ClusterRegistry,
        metrics: ScangateMetrics | None,
    ) -> None:
        # The configuration in force, read at each use: a reload swaps it (app/reload).
        self._config = config
        self._db = db
        self._clusters = clusters
        self._metrics = metrics

    @property
    def config_generation(self) -> int:
        """The number of the configuration in force (a reload makes a new one): the reaper
        re-checks the active grants against each generation's policies once."""
        return self._config.newest().number

    # -- the one path ---------------------------------------------------------------------------

    async def end_claimed(
        self, claimed: Sequence[ClaimedGrant], *, actor: str, reason: str | None = None
    ) -> list[str]:
        """Delete claimed grants' objects and finish them; per grant, in order: its end status
        (`revoked`/`expired`), `revoking` (the cluster failed; a retry is scheduled),
        or ENDED_ELSEWHERE. `reason`, when given, is recorded on each end event."""
        if not claimed:
            return []
        errors = await delete_grants_objects(self._clusters, claimed, concurrency=CONCURRENCY)
        now = utcnow()
        async with self._db.session() as session:
            done = [g.id for g in claimed if g.id not in errors]
            finished = await repository.finish_revocations(session, done, now=now)
            extra = {"reason": reason} if reason is not None else {}
            events = [
                repository.NewEvent(g.id, finished[g.id], {"attempts": g.attempts, **extra})
                for g in claimed
                if g.id in finished
            ]
            await repository.add_events(session, events, at=now, actor=actor)
        for grant in claimed:
            if grant.id in errors:
                # Rare (the cluster failed): one transaction each.
                await self._postpone(grant, errors[grant.id], actor=actor)
        outcomes: list[str] = []
        for grant in claimed:
            if grant.id in errors:
                outcomes.append(GrantStatus.REVOKING)
            elif grant.id in finished:
                self._ended(grant, finished[grant.id], now)
                outcomes.append(finished[grant.id])
            else:
                # Another claimant (whose lease ran out mid-attempt) finished it first.
                outcomes.append(ENDED_ELSEWHERE)
        return outcomes

    async def _postpone(self, claimed: ClaimedGrant, error: str, *, actor: str) -> None:
        now = utcnow()
        retry_max = self._config.settings.reaper.revoke_retry_max_seconds
        retry_at = now + retry_delay(claimed.attempts, retry_max)
        async with self._db.session() as session:
            if await repository.postpone_revocation(
                session, claimed.id, now=now, retry_at=retry_at, error=error
            ):
                await repository.add_event(
                    session, claimed.id, at=now, actor=actor, type="revocation_failed",
                    detail={
                        "error": error, "attempt": claimed.attempts,
                        "retry_at": format_rfc3339(retry_at),
                    },
                )  # fmt: skip
        log.warning(
            "grant %s: revocation attempt %d failed, retrying at %s: %s",
            claimed.id, claimed.attempts, format_rfc3339(retry_at), error,
        )  # fmt: skip

    def _ended(self, claimed: ClaimedGrant, status: GrantStatus, now: datetime) -> None:
        log.info("grant %s %s", claimed.id, status.value)
        if self._metrics is not None:
            self._metrics.grant_ended(claimed.cluster, claimed.scanner, status)
            if status is GrantStatus.EXPIRED:
                # `now` was taken once the objects were gone, the RoleBinding first: an upper
                # bound of the moment the grant's tokens stopped being authorized.
                lag = (now - claimed.expires_at).total_seconds()
                self._metrics.revocation_lag_observed(claimed.cluster, lag)

    # -- the reaper's batches --------------------------------------------------------------------

    async def expire_due(self, *, limit: int) -> list[str]:
        """Claim up to `limit` active grants past their expiry and end them; the outcomes."""
        now = utcnow()
        async with self._db.session() as session:
            claimed = await reaper_queries.claim_expired(
                session, now=now, lease_until=lease_until(now), limit=limit
            )
            await repository.add_events(
                session,
                [
                    repository.NewEvent(
                        g.id, "revoking", {"reason": "expired", "end_status": "expired"}
                    )
                    for g in claimed
                ],
                at=now,
                actor=REAPER_ACTOR,
            )
        return await self._end_in_background(claimed)

    async def retry_due(self, *, limit: int) -> list[str]:
        """Lease the next attempt at up to `limit` `revoking` grants whose retry is due (or
        whose claimant died) and end them; the outcomes."""
        now = utcnow()
        async with self._db.session() as session:
            claimed = await reaper_queries.claim_due_revocations(
                session, now=now, lease_until=lease_until(now), limit=limit
            )
        return await self._end_in_background(claimed)

    async def _end_in_background(self, claimed: Sequence[ClaimedGrant]) -> list[str]:
        try:
            return await self.end_claimed(claimed, actor=REAPER_ACTOR)
        except Exception:
            # Recording the outcomes failed (the database): the leases run out and the retry
            # job picks the grants up again; deleting their objects twice is harmless.
            log.exception("reaper: ending %d grant(s) failed", len(claimed))
            return [NOT_RECORDED] * len(claimed)

    async def revoke_disallowed(self) -> int:
        """End the active grants no policy allows any more (`policy_recheck.py`); how many
        ended. Run by the reaper once per configuration generation (a start or a reload)."""
        async with self._db.session() as session:
            rows = await reaper_queries.grants_as_requested(session)
        why = disallowed_grants(
            self._config.policies,
            [
                (
                    GrantUse(row.id, row.requester, row.cluster, row.namespace, row.scanner),
                    (row.detail or {}).get("claims"),
                )
                for row in rows
            ],
        )
        if not why:
            return 0
        now = utcnow()
        claimed: list[ClaimedGrant] = []
        async with self._db.session() as session:
            for grant_id in why:
                claim = await repository.claim_for_revocation(
                    session, grant_id, now=now, lease_until=lease_until(now)
                )
                if claim is not None:
                    claimed.append(claim)
            await repository.add_events(
                session,
                [
                    repository.NewEvent(
                        g.id, "revoking",
                        {"reason": DISALLOWED_REASON, "policy": why[g.id], "end_status": "revoked"},
                    )
                    for g in claimed
                ],
                at=now,
                actor=REAPER_ACTOR,
            )  # fmt: skip
        for grant in claimed:
            log.warning("grant %s: revoking: %s", grant.id, why[grant.id])
        outcomes = await self.end_claimed(claimed, actor=REAPER_ACTOR, reason=DISALLOWED_REASON)
        return outcomes.count(GrantStatus.REVOKED)

    # -- crash cleanup and sweep ---------------------------------------------------------------

    async def fail_stale(self, *, limit: int) -> int:
        """Mark up to `limit` grants still `provisioning` after the timeout (their request died
        mid-create) `failed` and delete whatever they had created; how many."""
        timeout = self._config.settings.reaper.provisioning_timeout_seconds
        error = f"provisioning did not finish within {timeout} s (the request was interrupted)"
        now = utcnow()
        async with self._db.session() as session:
            stale = await reaper_queries.fail_stale_provisioning(
                session, entered_before=now - timedelta(seconds=timeout), now=now, error=error,
                limit=limit,
            )  # fmt: skip
            await repository.add_events(
                session,
                [repository.NewEvent(g.id, "failed", {"error": error}) for g in stale],
                at=now,
                actor=REAPER_ACTOR,
            )
        for grant in stale:
            log.warning("grant %s: %s; deleting its objects", grant.id, error)
            if self._metrics is not None:
                self._metrics.grant_failed(grant.cluster, grant.scanner)
        errors = await delete_grants_objects(self._clusters, stale, concurrency=CONCURRENCY)
        for grant_id, cleanup_error in errors.items():
            # The grant is failed (not live), so the next sweep removes what is left.
            log.warning("grant %s: cleanup deferred to the sweep: %s", grant_id, cleanup_error)
        return len(stale)

    async def sweep(self, cluster_name: str) -> int:
        """Delete `cluster_name`'s orphans (`sweep.py`); how many."""
        swept = await sweep_cluster(
            self._db,
            self._clusters.get(cluster_name),
            policy_namespaces(self._config.settings.policies, cluster_name),
        )
        if self._metrics is not None:
            self._metrics.orphans_swept_in(cluster_name, swept)
        return swept
