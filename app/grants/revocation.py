"""Ending a grant in the cluster: shared by `POST /revoke` and the reaper.

A grant is first *claimed* (`active -> revoking`, a conditional UPDATE committed on its own), then
its objects are deleted with no transaction open, then it is *finished* (`revoking -> revoked |
expired`, conditional again). The claim carries a lease (`next_attempt_at`): other replicas leave
the grant alone until it passes, and if the claimant dies, the reaper retries once it has.
Deletion order is the kube package's: ServiceAccount first, since that alone invalidates every
token minted for the grant; then RoleBinding, then Role. The reaper ends grants that expired
together as a batch (`carry_out_revocations`): every ServiceAccount first, then the rest.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from app.db.engine import Database
from app.db.models import GrantStatus
from app.grants import repository
from app.grants.clock import format_rfc3339, utcnow
from app.grants.repository import ClaimedGrant
from app.kube.clusters import ClusterRegistry
from app.kube.errors import KubeError
from app.observability.metrics import ScangateMetrics

log = logging.getLogger(__name__)

# How long a claimant owns a revocation attempt. Short, so a replica that dies mid-revocation
# delays the retry little; an attempt that outlives it is harmless (deletes treat 404 as done
# and only one claimant can finish the grant).
REVOCATION_LEASE: Final = timedelta(seconds=30)
REAPER_ACTOR: Final = "scangate:reaper"
# What carry_out_revocation reports when another claimant finished the grant first (so that
# counting outcomes never counts one grant twice).
ENDED_ELSEWHERE: Final = "ended-elsewhere"


def lease_until(now: datetime) -> datetime:
    return now + REVOCATION_LEASE


def retry_delay(attempts: int, max_seconds: int) -> timedelta:
    """Exponential backoff after the n-th failed attempt (1 s, 2 s, 4 s ... capped), jittered so
    replicas that failed together do not retry together."""
    ceiling = min(float(max_seconds), 2.0 ** max(0, attempts - 1))
    return timedelta(seconds=ceiling * random.uniform(0.75, 1.0))


async def _postpone(
    db: Database, claimed: ClaimedGrant, error: str, *, actor: str, retry_max_seconds: int
) -> None:
    """Record a failed attempt and when the next may start."""
    now = utcnow()
    retry_at = now + retry_delay(claimed.attempts, retry_max_seconds)
    async with db.session() as session:
        if await repository.postpone_revocation(
            session, claimed.id, now=now, retry_at=retry_at, error=error
        ):
            await repository.add_event(
                session,
                claimed.id,
                at=now,
                actor=actor,
                type="revocation_failed",
                detail={
                    "error": error,
                    "attempt": claimed.attempts,
                    "retry_at": format_rfc3339(retry_at),
                },
            )
    log.warning(
        "grant %s: revocation attempt %d failed, retrying at %s: %s",
        claimed.id,
        claimed.attempts,
        format_rfc3339(retry_at),
        error,
    )


async def carry_out_revocation(
    db: Database,
    clusters: ClusterRegistry,
    claimed: ClaimedGrant,
    *,
    actor: str,
    retry_max_seconds: int,
    metrics: ScangateMetrics | None = None,
) -> str:
    """Delete a claimed grant's objects and finish it. Returns what happened: `revoked` or
    `expired` (this call ended it), `revoking` (the cluster failed; a retry is scheduled) or
    ENDED_ELSEWHERE."""
    error: str | None = None
    try:
        cluster = clusters.get(claimed.cluster)
    except KeyError:
        error = f"cluster {claimed.cluster!r} is not configured"
    else:
        try:
            await cluster.delete_grant_objects(claimed.id, claimed.namespace)
        except KubeError as exc:
            error = str(exc)  # safe by contract: no tokens, no raw bodies
    now = utcnow()
    if error is not None:
        await _postpone(db, claimed, error, actor=actor, retry_max_seconds=retry_max_seconds)
        return GrantStatus.REVOKING
    async with db.session() as session:
        finished = await repository.finish_revocations(session, [claimed.id], now=now)
        status = finished.get(claimed.id)
        if status is not None:
            await repository.add_event(
                session,
                claimed.id,
                at=now,
                actor=actor,
                type=status,
                detail={"attempts": claimed.attempts},
            )
    if status is None:
        # Another claimant (whose lease ran out mid-attempt, yet it went on) finished it first.
        return ENDED_ELSEWHERE
    _ended(claimed, status, now, metrics)
    return status


def _ended(
    claimed: ClaimedGrant, status: str, now: datetime, metrics: ScangateMetrics | None
) -> None:
    log.info("grant %s %s", claimed.id, status)
    if metrics is not None:
        metrics.grant_ended(claimed.cluster, claimed.scanner, status)
        if status is GrantStatus.EXPIRED:
            # `now` was taken once the objects were gone, the ServiceAccount first: an upper
            # bound of the moment the grant's tokens stopped working.
            lag = (now - claimed.expires_at).total_seconds()
            metrics.revocation_lag_observed(claimed.cluster, lag)


async def carry_out_revocations(
    db: Database,
    clusters: ClusterRegistry,
    claimed: Sequence[ClaimedGrant],
    *,
    actor: str,
    retry_max_seconds: int,
    concurrency: int,
    metrics: ScangateMetrics | None = None,
) -> list[str]:
    """`carry_out_revocation` for many grants at once (the reaper, when grants expire
    together); the outcomes, in order.

    Every ServiceAccount goes first, `concurrency` deletions at a time, and only then the
    RoleBindings and Roles: deleting a grant's ServiceAccount is what ends its access, so
    when hundreds of grants expire at one moment, all of them lose access before any time is
    spent on objects that grant nothing by themselves. The outcomes are then written in one
    transaction instead of one per grant.
    """
    errors: dict[str, str] = {}
    semaphore = asyncio.Semaphore(concurrency)

    async def attempt(grant: ClaimedGrant, *, access: bool) -> None:
        if grant.id in errors:
            return  # its first step failed: it is retried whole, later
        async with semaphore:
            try:
                cluster = clusters.get(grant.cluster)
                if access:
                    await cluster.delete_grant_access(grant.id)
                else:
                    await cluster.delete_grant_rbac(grant.id, grant.namespace)
            except KeyError:
                errors[grant.id] = f"cluster {grant.cluster!r} is not configured"
            except KubeError as exc:
                errors[grant.id] = str(exc)  # safe by contract: no tokens, no raw bodies

    await asyncio.gather(*(attempt(grant, access=True) for grant in claimed))
    await asyncio.gather(*(attempt(grant, access=False) for grant in claimed))
    now = utcnow()
    done = [g for g in claimed if g.id not in errors]
    failed = [g for g in claimed if g.id in errors]
    async with db.session() as session:
        finished = await repository.finish_revocations(session, [g.id for g in done], now=now)
        await repository.add_events(
            session,
            [
                repository.NewEvent(g.id, finished[g.id], {"attempts": g.attempts})
                for g in done
                if g.id in finished
            ],
            at=now,
            actor=actor,
        )
    for grant in failed:
        # Rare (the cluster failed): one transaction each, as for a single revocation.
        await _postpone(
            db, grant, errors[grant.id], actor=actor, retry_max_seconds=retry_max_seconds
        )
    outcomes: list[str] = []
    for grant in claimed:
        if grant.id in errors:
            outcomes.append(GrantStatus.REVOKING)
        elif grant.id in finished:
            _ended(grant, finished[grant.id], now, metrics)
            outcomes.append(finished[grant.id])
        else:
            outcomes.append(ENDED_ELSEWHERE)
    return outcomes
