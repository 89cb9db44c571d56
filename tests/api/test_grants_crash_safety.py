"""Crash safety: whatever fails, and whenever the process dies, no half-provisioned grant and no
orphaned object survives: the request cleans up after itself, and the reaper after the dead."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.db.engine import Database
from app.grants import repository
from app.grants.clock import utcnow
from app.grants.ids import new_grant_id
from app.main import reap_once as run_once
from kubesim.pytest_plugin import KubesimHandle
from tests.support.api_answers import assert_problem
from tests.support.cluster_view import cluster_objects, expected_objects, plant_objects
from tests.support.grant_rows import grant_row, insert_grants
from tests.support.polling import eventually
from tests.support.scangate import GRANTS_NAMESPACE, Deployment, Scangate

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("resource", ["serviceaccounts", "roles", "rolebindings"])
async def test_cluster_failure_at_each_step_leaves_nothing_and_a_failed_grant(
    scangate_without_reaper: Scangate, sim: KubesimHandle, resource: str
) -> None:
    scangate = scangate_without_reaper  # the request must clean up on its own
    sim.inject_fault(status=500, methods=["POST"], resources=[resource])

    response = await scangate.create(pods=["web-0", "web-1"])
    body = assert_problem(response, 503, "upstream-unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert body["detail"]

    [failed] = (await scangate.request("GET", "/v1/grants")).json()["items"]
    assert failed["status"] == "failed"
    assert failed["last_error"]
    assert failed["ended_at"] is not None
    assert cluster_objects(sim) == set()
    events = await scangate.events(failed["id"])
    assert [e["type"] for e in events] == ["requested", "failed"]
    assert events[-1]["detail"]["cleaned_up"] is True


async def test_cluster_refusing_scangate_is_502_naming_the_permission(
    scangate_without_reaper: Scangate, sim: KubesimHandle
) -> None:
    sim.inject_fault(status=403, methods=["POST"], resources=["roles"])
    response = await scangate_without_reaper.create()
    body = assert_problem(response, 502, "upstream-forbidden")
    assert "roles" in body["permission"]
    assert body["permission"] in body["detail"]
    assert cluster_objects(sim) == set()


async def test_orphaned_provisioning_grant_is_failed_and_cleaned_by_the_reaper(
    deployment: Deployment, db: Database, sim: KubesimHandle
) -> None:
    # A request that died mid-create: its row says provisioning, its objects exist.
    orphan = grant_row(status="provisioning", created_at=utcnow() - timedelta(minutes=10))
    fresh = grant_row(status="provisioning")  # still within the timeout: left alone
    await insert_grants(db, orphan, fresh)
    plant_objects(sim, orphan.id)
    plant_objects(sim, fresh.id)

    report = await run_once(deployment.settings)  # `scangate reap --once`

    assert report.failed_provisioning == 1
    assert report.errors == []
    async with db.session() as session:
        failed = await repository.get_grant(session, orphan.id)
        untouched = await repository.get_grant(session, fresh.id)
        events = await repository.list_events(session, orphan.id)
    assert failed is not None
    assert untouched is not None
    assert failed.status == "failed"
    assert "provisioning did not finish" in (failed.last_error or "")
    assert [(e.type, e.actor) for e in events] == [("failed", "scangate:reaper")]
    assert untouched.status == "provisioning"
    assert cluster_objects(sim) == expected_objects(fresh.id)


async def test_running_reaper_fails_stale_provisioning_when_it_times_out(
    deployment: Deployment, db: Database, sim: KubesimHandle
) -> None:
    deployment.reconfigure(reaper={"provisioning_timeout_seconds": 1})
    async with deployment.running() as scangate:
        orphan = grant_row(status="provisioning")
        await insert_grants(db, orphan)
        plant_objects(sim, orphan.id)
        scangate.services.reaper.wake()
        assert await scangate.wait_for_status(orphan.id, {"failed"}, within=5) == "failed"
        # `failed` is recorded first (the claim), then the objects are deleted.
        assert await eventually(lambda: not cluster_objects(sim, orphan.id))


async def test_labelled_objects_without_a_live_grant_are_swept(
    scangate_without_reaper: Scangate, deployment: Deployment, db: Database, sim: KubesimHandle
) -> None:
    # The app only creates the live grant: a running reaper sweeps on its first pass, which
    # would race this test's own pass for the planted orphans (and its count of them).
    scangate = scangate_without_reaper
    live = await scangate.grant()
    revoking = grant_row(status="revoking", end_status="revoked", attempts=1,
                         next_attempt_at=utcnow() + timedelta(hours=1))  # fmt: skip
    ended = grant_row(status="revoked", ended_at=utcnow())
    await insert_grants(db, revoking, ended)
    unknown = new_grant_id()  # never in the database
    for grant_id in (unknown, ended.id, revoking.id):
        plant_objects(sim, grant_id)
    # Marked managed-by scangate but without a grant label: someone's, not ours to delete.
    sim.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "hand-made", "namespace": GRANTS_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "scangate"}},
        }
    )  # fmt: skip

    report = await run_once(deployment.settings)

    assert report.swept == 6
    assert report.errors == []
    # Exactly the live grants keep objects (revoking counts: its revocation owns them).
    assert cluster_objects(sim) == (
        expected_objects(live["id"])
        | expected_objects(revoking.id)
        | {("ServiceAccount", GRANTS_NAMESPACE, "hand-made")}
    )
    assert await scangate.status_of(live["id"]) == "active"


async def test_concurrent_sweeps_count_each_orphan_once(
    deployment: Deployment, db: Database, sim: KubesimHandle
) -> None:
    # Two replicas' reapers (or `scangate reap --once` beside a running reaper) may list the
    # same orphans; each object is deleted once, so the passes' counts add up to what went.
    ended = [grant_row(status="revoked", ended_at=utcnow()) for _ in range(4)]
    await insert_grants(db, *ended)
    for grant in ended:
        plant_objects(sim, grant.id)

    first, second = await asyncio.gather(
        run_once(deployment.settings), run_once(deployment.settings)
    )

    assert first.errors == []
    assert second.errors == []
    assert first.swept + second.swept == 3 * len(ended)
    assert cluster_objects(sim) == set()
