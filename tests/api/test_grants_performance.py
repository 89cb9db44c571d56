"""The behaviours scangate's speed rests on (bench/ measures the speed itself).

Each optimisation is a promise about what happens, so it is checked as one: which Kubernetes
calls a grant makes, when the reaper wakes, in which order a mass expiry deletes objects, and
that concurrent requests on one database all succeed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.db.models import Grant
from app.grants.clock import utcnow
from app.grants.reaper import ReaperPass
from kubesim.pytest_plugin import KubesimHandle
from tests.support.cluster_view import cluster_objects
from tests.support.polling import eventually
from tests.support.scangate import Scangate

pytestmark = pytest.mark.anyio


def _calls(sim: KubesimHandle, verb: str) -> list[tuple[str, str]]:
    """(resource, name) of the API requests with this RBAC verb that kubesim served."""
    return [(r["resource"], r["name"]) for r in sim.requests() if r["verb"] == verb]


async def test_a_grant_makes_only_the_calls_on_its_critical_path(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    await scangate.grant(pods=["web-0"])

    assert _calls(sim, "get") == [("pods", "web-0")]  # no namespace lookup: the pod proves it
    created = sorted(resource for resource, _ in _calls(sim, "create"))
    assert created == ["rolebindings", "roles", "serviceaccounts"]


def _reaper_passes(scangate: Scangate) -> float:
    value = scangate.services.metrics.registry.get_sample_value(
        "scangate_reaper_pass_duration_seconds_count"
    )
    return float(value or 0)


async def test_grants_due_after_the_reapers_wake_up_do_not_wake_it(scangate: Scangate) -> None:
    # After its first pass the reaper sleeps until the next sweep (60 s in this deployment).
    assert await eventually(lambda: _reaper_passes(scangate) >= 1)
    await asyncio.sleep(0.3)
    passes = _reaper_passes(scangate)

    for _ in range(5):  # each expires in an hour: nothing for the reaper to do sooner
        await scangate.grant(ttl_seconds=3600)
    await asyncio.sleep(0.3)
    assert _reaper_passes(scangate) == passes

    await scangate.grant(ttl_seconds=30)  # due before the reaper's wake-up: it must look
    assert await eventually(lambda: _reaper_passes(scangate) > passes)


async def test_a_steady_stream_of_grants_does_not_keep_the_reaper_busy(
    scangate: Scangate,
) -> None:
    # Grants created while a pass runs cannot be known to that pass, but they are not due for
    # an hour: the reaper must not answer each one with another pass (it used to, and under
    # load that kept it running passes back to back).
    assert await eventually(lambda: _reaper_passes(scangate) >= 1)
    await asyncio.sleep(0.3)
    passes = _reaper_passes(scangate)
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + 1.5

    async def keep_granting() -> int:
        created = 0
        while loop.time() < stop_at:
            await scangate.grant(ttl_seconds=3600)
            created += 1
        return created

    streams = [asyncio.create_task(keep_granting()) for _ in range(6)]
    await asyncio.sleep(0.1)
    scangate.services.reaper.wake()  # one pass, started in the middle of the stream
    created = sum(await asyncio.gather(*streams))

    assert created >= 30
    assert _reaper_passes(scangate) - passes <= 2


async def test_an_expiry_reported_during_a_pass_after_it_looked_is_still_met(
    scangate: Scangate, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant_id = (await scangate.grant(ttl_seconds=3600))["id"]
    assert await eventually(lambda: _reaper_passes(scangate) >= 1)
    # Hold the next pass just after it has read when its next work is due (an hour away).
    looked, resume = asyncio.Event(), asyncio.Event()
    next_due = ReaperPass.next_due

    async def held(self: ReaperPass, **kwargs: Any) -> Any:
        due = await next_due(self, **kwargs)
        looked.set()
        await resume.wait()
        return due

    monkeypatch.setattr(ReaperPass, "next_due", held)
    scangate.services.reaper.wake()
    await asyncio.wait_for(looked.wait(), 5)

    # Now the grant's expiry moves to 0.3 s from now: too late for that pass to have seen it.
    async with scangate.services.db.session() as session:
        moment = utcnow() + timedelta(seconds=0.3)
        await session.execute(update(Grant).where(Grant.id == grant_id).values(expires_at=moment))
    scangate.services.reaper.wake(moment)
    monkeypatch.setattr(ReaperPass, "next_due", next_due)
    resume.set()

    assert await scangate.wait_for_status(grant_id, {"expired"}, within=5) == "expired"


async def test_grants_expiring_together_all_lose_access_before_any_rbac_cleanup(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    grants = [await scangate.grant() for _ in range(6)]
    ids = [g["id"] for g in grants]

    await scangate.expire_soon(*ids)
    for grant_id in ids:
        assert await scangate.wait_for_status(grant_id, {"expired"}) == "expired"

    deletes = [resource for resource, _ in _calls(sim, "delete")]
    assert sorted(deletes) == sorted(["serviceaccounts", "rolebindings", "roles"] * 6)
    # Every RoleBinding (what ends authorization at once, even while a real API server still
    # authenticates the token from its cache) went before any ServiceAccount or Role.
    assert deletes[:6] == ["rolebindings"] * 6
    assert cluster_objects(sim) == set()
    for grant_id in ids:
        types = [e["type"] for e in await scangate.events(grant_id)]
        assert types[-2:] == ["revoking", "expired"]


async def test_a_failing_deletion_in_a_mass_expiry_defers_only_its_own_grant(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    ids = [(await scangate.grant())["id"] for _ in range(4)]
    # One refusal (not retried, unlike a 5xx): exactly one grant's RoleBinding stays.
    sim.inject_fault(status=403, methods=["DELETE"], resources=["rolebindings"], count=1)

    await scangate.expire_soon(*ids)

    async def statuses() -> list[str]:
        return [await scangate.status_of(grant_id) for grant_id in ids]

    for _ in range(200):
        if sorted(await statuses()) == ["expired", "expired", "expired", "revoking"]:
            break
        await asyncio.sleep(0.05)
    assert sorted(await statuses()) == ["expired", "expired", "expired", "revoking"]
    [deferred] = [g for g, s in zip(ids, await statuses(), strict=True) if s == "revoking"]
    assert (await scangate.events(deferred))[-1]["type"] == "revocation_failed"
    # Its retry (after a backoff of about a second) finishes it.
    assert await scangate.wait_for_status(deferred, {"expired"}, within=15) == "expired"
    assert cluster_objects(sim) == set()


async def test_concurrent_requests_on_one_database_all_succeed(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    # SQLite has one writer: requests queue for it instead of failing or sleeping in its busy
    # handler; revocations read before they write, which must not fail either.
    created = await asyncio.gather(*(scangate.create() for _ in range(24)))
    assert [r.status_code for r in created] == [201] * 24
    ids = [r.json()["id"] for r in created]
    more = asyncio.gather(*(scangate.create() for _ in range(8)))
    revoked = await asyncio.gather(*(scangate.revoke(grant_id) for grant_id in ids))
    assert [r.status_code for r in revoked] == [200] * 24
    assert [r.status_code for r in await more] == [201] * 8
    assert len(cluster_objects(sim)) == 8 * 3
