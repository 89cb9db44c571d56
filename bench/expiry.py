"""The expiry stage: revocation lag when many grants expire at one moment, and the time to reap
a mass of expired grants.

Grants are made to expire together by moving their `expires_at` in the database (the API's
minimum TTL is 30 s, and grants created one after another would not expire together), exactly
as the API tests do. The reaper sleeps until the earliest moment it knows work is due; it learns
of the new moment the way it does in production: a grant is activated whose expiry (the API's
minimum, 30 s) is sooner than the reaper's wake-up time (everything else expires in an hour and
the sweep is hourly here), so it wakes, finds the moved expiries and sleeps until them.

Measured:
- revocation lag: expiry moment -> the first request with the grant's token that the cluster
  denies, for a token in constant use. Like kube-apiserver, kubesim caches a successful token
  authentication (10 s by default), so a token used a moment ago still authenticates after its
  ServiceAccount is deleted; deleting the RoleBinding (or the Role) denies every request at once.
  Access therefore ends at the earliest of: the RoleBinding's deletion, the Role's, or the
  ServiceAccount's plus the cache TTL. The deletion times are the cluster's own (when kubesim
  answered each DELETE, from its request log). The moment the ServiceAccount alone was gone is
  kept beside it, and the lag until the grant is finished (`expired` recorded once all three
  objects are deleted), from its audit event's timestamp in the database.
- reaping: grants seeded straight into the database and the cluster (identical rows and
  objects to what the API creates, made in bulk), expiring together; the time from that moment
  to the last one's `expired` event.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, insert, select, update

from app.db.engine import Database
from app.db.models import Grant, GrantEvent
from app.grants.clock import utcnow
from app.grants.ids import new_grant_id
from app.grants.provisioning import service_account_username
from app.kube.manifests import role_binding_manifest, role_manifest, service_account_manifest
from app.kube.models import GrantTarget
from app.kube.naming import object_name
from app.kube.profiles import profile_rules
from bench.cluster import GRANTS_NAMESPACE, TARGET_NAMESPACE, TARGET_POD, SimulatedCluster
from bench.load import run_async
from bench.plan import Plan
from bench.service import PRINCIPAL, BenchError, ScangateClient
from bench.stats import Latencies

SEED_REQUESTER: Final = f"apikey:{PRINCIPAL}"
_IN_CHUNK: Final = 500
# Expiry is scheduled this far after the setup finished, so the reaper has recomputed its
# wake-up time well before the moment comes.
_LEAD_SECONDS: Final = 1.5
_TIMEOUT: Final = 300.0
_WAKE_TTL_SECONDS: Final = 30  # the API's minimum


@dataclass
class LagResults:
    denied: Latencies  # expiry -> first denied request with the grant's token (kubesim's clock)
    account_gone: Latencies  # expiry -> ServiceAccount deleted (kubesim's clock)
    finished: Latencies  # expiry -> grant recorded `expired` (scangate's clock, ms precision)
    unobserved: int  # grants with a deletion missing from kubesim's request log


@dataclass
class ReapResults:
    grants: int
    seconds: float  # expiry -> the last grant recorded `expired`
    reaped: int
    objects_left: dict[str, int]


async def _expire_at(db: Database, grant_ids: list[str], moment: datetime) -> None:
    async with db.session() as session:
        for start in range(0, len(grant_ids), _IN_CHUNK):
            chunk = grant_ids[start : start + _IN_CHUNK]
            await session.execute(
                update(Grant).where(Grant.id.in_(chunk)).values(expires_at=moment)
            )


async def _expired_events(db: Database, grant_ids: list[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    async with db.session() as session:
        for start in range(0, len(grant_ids), _IN_CHUNK):
            chunk = grant_ids[start : start + _IN_CHUNK]
            rows = await session.execute(
                select(GrantEvent.grant_id, GrantEvent.at).where(
                    GrantEvent.grant_id.in_(chunk), GrantEvent.type == "expired"
                )
            )
            found.update({row.grant_id: row.at for row in rows})
    return found


async def _wait_all_expired(db: Database, grant_ids: list[str]) -> dict[str, datetime]:
    deadline = time.monotonic() + _TIMEOUT
    while True:
        events = await _expired_events(db, grant_ids)
        if len(events) == len(grant_ids) or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.1)


async def _wake_reaper(scangate: ScangateClient) -> None:
    """A grant expiring sooner than anything the reaper knows of wakes it (see the module
    docstring); it then finds the moved expiries and sleeps until them."""
    await scangate.create_grant(ttl_seconds=_WAKE_TTL_SECONDS)


async def measure_revocation_lag(
    plan: Plan, cluster: SimulatedCluster, scangate: ScangateClient, db: Database
) -> LagResults:
    _, grant_ids = await run_async(
        plan.concurrency, range(plan.expiring_together), lambda _: scangate.create_grant()
    )
    moment = utcnow() + timedelta(seconds=_LEAD_SECONDS)
    await _expire_at(db, grant_ids, moment)
    # From here on the log holds the wake-up grant's few calls and the reaper's deletions.
    await asyncio.to_thread(cluster.clear_request_log)
    await _wake_reaper(scangate)
    events = await _wait_all_expired(db, grant_ids)
    if len(events) < len(grant_ids):
        raise BenchError(f"only {len(events)} of {len(grant_ids)} grants expired")
    deleted = {
        resource: await asyncio.to_thread(cluster.deletions, resource)
        for resource in ("serviceaccounts", "rolebindings", "roles")
    }
    cache_ttl = await asyncio.to_thread(cluster.token_cache_ttl_seconds)
    expiry = moment.timestamp()
    names = [object_name(grant_id) for grant_id in grant_ids]
    observed = [name for name in names if all(name in found for found in deleted.values())]
    denied = tuple(
        min(
            deleted["rolebindings"][name],
            deleted["roles"][name],
            deleted["serviceaccounts"][name] + cache_ttl,
        )
        - expiry
        for name in observed
    )
    account_gone = tuple(deleted["serviceaccounts"][name] - expiry for name in observed)
    finished = tuple((at - moment).total_seconds() for at in events.values())
    return LagResults(
        denied=Latencies(denied, 0.0),
        account_gone=Latencies(account_gone, 0.0),
        finished=Latencies(finished, 0.0),
        unobserved=len(names) - len(observed),
    )


def _seed_rows(grant_ids: list[str], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": grant_id,
            "status": "active",
            "cluster": "default",
            "namespace": TARGET_NAMESPACE,
            "scanner": "exec",
            "pods": [TARGET_POD],
            "selector": None,
            "requester": SEED_REQUESTER,
            "policy": "bench",
            "reason": "benchmark seed",
            "service_account": service_account_username(GRANTS_NAMESPACE, grant_id),
            "created_at": now,
            "updated_at": now,
            "expires_at": now + timedelta(hours=1),
            "attempts": 0,
        }
        for grant_id in grant_ids
    ]


def _seed_objects(grant_ids: list[str], now: datetime) -> list[dict[str, Any]]:
    rules = profile_rules("exec", [TARGET_POD])
    objects: list[dict[str, Any]] = []
    for grant_id in grant_ids:
        target = GrantTarget(grant_id, TARGET_NAMESPACE, "exec", SEED_REQUESTER, now)
        objects += [
            service_account_manifest(target, GRANTS_NAMESPACE, GRANTS_NAMESPACE),
            role_manifest(target, rules, GRANTS_NAMESPACE),
            role_binding_manifest(target, GRANTS_NAMESPACE, GRANTS_NAMESPACE),
        ]
    return objects


async def _live_grants(db: Database) -> int:
    async with db.session() as session:
        count = await session.scalar(
            select(func.count()).where(Grant.status.in_(("provisioning", "active", "revoking")))
        )
    return int(count or 0)


async def measure_reap(
    plan: Plan, cluster: SimulatedCluster, scangate: ScangateClient, db: Database
) -> ReapResults:
    grant_ids = [new_grant_id() for _ in range(plan.reap)]
    now = utcnow()
    # Rows first, then objects: the orphan sweep must never see an object without its row.
    rows = _seed_rows(grant_ids, now)
    async with db.session() as session:
        for start in range(0, len(rows), _IN_CHUNK):
            await session.execute(insert(Grant), rows[start : start + _IN_CHUNK])
    await asyncio.to_thread(cluster.apply, _seed_objects(grant_ids, now))
    moment = utcnow() + timedelta(seconds=_LEAD_SECONDS)
    await _expire_at(db, grant_ids, moment)
    await _wake_reaper(scangate)
    events = await _wait_all_expired(db, grant_ids)
    if len(events) < len(grant_ids):
        raise BenchError(f"only {len(events)} of {len(grant_ids)} seeded grants were reaped")
    seconds = (max(events.values()) - moment).total_seconds()
    live = await _live_grants(db)
    counts = await asyncio.to_thread(cluster.count_managed)
    # The invariant the reaper keeps: objects exist exactly for live grants.
    left = {kind: count - live for kind, count in counts.items()}
    return ReapResults(
        grants=len(grant_ids), seconds=seconds, reaped=len(events), objects_left=left
    )
