"""Two service instances on one PostgreSQL database, each with its own reaper, and callers
revoking at the same moment: every grant is ended exactly once, and nobody reports an error."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.grants import reaper, repository
from app.grants.clock import utcnow
from kubesim.pytest_plugin import KubesimHandle
from tests.support.cluster_view import cluster_objects
from tests.support.scangate import Deployment

pytestmark = pytest.mark.anyio

GRANTS = 24


# Replicas share a PostgreSQL database; SQLite is single-node, so only PostgreSQL is exercised.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_racing_reapers_end_every_expired_grant_exactly_once(
    deployment: Deployment,
    database_url: str,
    sim: KubesimHandle,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert database_url.startswith("postgresql")
    caplog.set_level(logging.INFO)
    # Small claim batches, so the replicas take turns claiming instead of one statement
    # claiming everything: the race is then fought row by row.
    monkeypatch.setattr(reaper, "BATCH_SIZE", 2)
    async with deployment.running() as first, deployment.running() as second:
        created = await asyncio.gather(
            *(
                (first if i % 2 else second).grant(pods=["web-0" if i % 3 else "web-1"])
                for i in range(GRANTS)
            )
        )
        ids = [g["id"] for g in created]
        # Both reapers are woken, compute the same due moment and race for the claims then.
        moment = await first.expire_soon(*ids, seconds=1.0)
        second.services.reaper.wake()
        # ... and callers revoke every third grant just as it expires.
        await asyncio.sleep(max(0.0, (moment - utcnow()).total_seconds()))
        revocations = await asyncio.gather(
            *((first, second)[i % 2].revoke(grant_id) for i, grant_id in enumerate(ids[::3]))
        )
        assert {r.status_code for r in revocations} <= {200, 202}

        statuses = await asyncio.gather(
            *(first.wait_for_status(i, {"expired", "revoked"}, within=20) for i in ids)
        )
        assert set(statuses) <= {"expired", "revoked"}

        async with first.services.db.session() as session:
            for grant_id, status in zip(ids, statuses, strict=True):
                events = [e.type for e in await repository.list_events(session, grant_id)]
                # One claim, one end: whoever won, the grant ended exactly once.
                assert events == ["requested", "activated", "revoking", status], events

        totals = [replica.services.reaper.totals for replica in (first, second)]
        assert [t.errors for t in totals] == [[], []]
        # Counted once in all: no grant was ended by both replicas.
        assert sum(t.expired for t in totals) == statuses.count("expired")
    assert cluster_objects(sim) == set()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [r.getMessage() for r in problems]
