"""Approvals (README "Approvals"): a request under a policy with `approval` waits, committed and
with nothing in the cluster, until N distinct approvers approve it; one denial, a withdrawal
or the deadline ends it. Runs the real app on SQLite and PostgreSQL against kubesim over
HTTPS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.auth import generate_api_key
from app.db.models import Grant
from app.grants.clock import utcnow
from kubesim.pytest_plugin import KubesimHandle
from tests.support.api_answers import assert_problem, parse_time
from tests.support.cluster_view import cluster_objects, expected_objects
from tests.support.scangate import PRINCIPALS, Deployment, Scangate

pytestmark = pytest.mark.anyio

# alice requests (payments-ci); bob and dave approve; carol is a stranger to the policy.
APPROVERS = ["apikey:alice", "apikey:bob", "apikey:dave"]


@pytest.fixture
def api_keys() -> dict[str, str]:
    """The suite's principals and dave, an approver without any policy of its own."""
    return {name: generate_api_key()[0] for name in (*PRINCIPALS, "dave")}


@pytest.fixture
def configure(deployment: Deployment) -> Callable[..., Deployment]:
    """Give payments-ci an `approval` section (and any other policy keys) before starting."""

    def apply(*, approval: dict[str, Any] | None = None, **policy: Any) -> Deployment:
        payments = deployment.document["policies"][0]
        payments["approval"] = {"required": 2, "approvers": APPROVERS} | (approval or {})
        payments.update(policy)
        deployment.reconfigure(policies=deployment.document["policies"])
        return deployment

    return apply


@pytest.fixture
async def gated(configure: Callable[..., Deployment]) -> AsyncIterator[Scangate]:
    """The service, payments-ci needing two approvals, its reaper running."""
    async with configure().running() as running:
        yield running


async def request_pending(scangate: Scangate, **body: Any) -> dict[str, Any]:
    response = await scangate.create(**body)
    assert response.status_code == 202, response.text
    grant: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/grants/{grant['id']}"
    assert grant["status"] == "pending_approval"
    return grant


async def approve(scangate: Scangate, grant_id: str, who: str, **body: Any) -> Any:
    return await scangate.request("POST", f"/v1/grants/{grant_id}/approve", who=who, json=body)


async def deny(scangate: Scangate, grant_id: str, who: str, **body: Any) -> Any:
    return await scangate.request("POST", f"/v1/grants/{grant_id}/deny", who=who, json=body)


def cluster_writes(sim: KubesimHandle) -> list[tuple[str, str]]:
    return [(r["verb"], r["resource"]) for r in sim.requests() if r["method"] != "GET"]


async def test_a_request_needing_approval_is_committed_pending_with_nothing_in_the_cluster(
    gated: Scangate, sim: KubesimHandle
) -> None:
    grant = await request_pending(gated, reason="CIS scan")
    created, deadline = parse_time(grant["created_at"]), parse_time(grant["approval"]["deadline"])
    assert deadline - created == timedelta(seconds=3600)  # the default timeout
    assert grant["approval"] == {
        "required": 2,
        "approvals": [],
        "deadline": grant["approval"]["deadline"],
        "denied_by": None,
        "denial_reason": None,
    }
    # No expiry is due before activation: the latest end possible, deadline + TTL.
    assert parse_time(grant["expires_at"]) == deadline + timedelta(seconds=900)
    assert await gated.status_of(grant["id"]) == "pending_approval"
    assert cluster_objects(sim, grant["id"]) == set()
    assert cluster_writes(sim) == []

    events = await gated.events(grant["id"])
    assert [(e["type"], e["actor"]) for e in events] == [
        ("requested", "apikey:alice"),
        ("approval_required", "apikey:alice"),
    ]
    assert events[0]["detail"]["approval_required"] == 2
    assert events[1]["detail"] == {
        "required": 2,
        "approvers": APPROVERS,
        "allow_self_approval": False,
        "deadline": grant["approval"]["deadline"],
    }
    # No credentials before approval.
    body = assert_problem(await gated.kubeconfig(grant["id"]), 409, "grant-not-active")
    assert body["grant_status"] == "pending_approval"


async def test_the_nth_approval_provisions_and_the_ttl_counts_from_activation(
    gated: Scangate, sim: KubesimHandle
) -> None:
    grant = await request_pending(gated, ttl_seconds=600)
    # The request waited three hours for its approvers (its deadline is its own column).
    async with gated.services.db.session() as session:
        await session.execute(
            update(Grant)
            .where(Grant.id == grant["id"])
            .values(created_at=utcnow() - timedelta(hours=3))
        )

    first = await approve(gated, grant["id"], "bob", reason="ticket CHG-1")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "pending_approval"
    assert [a["approver"] for a in first.json()["approval"]["approvals"]] == ["apikey:bob"]
    assert cluster_objects(sim, grant["id"]) == set()

    second = await approve(gated, grant["id"], "dave")
    assert second.status_code == 200, second.text
    active = second.json()
    assert active["status"] == "active"
    assert [(a["approver"], a["reason"]) for a in active["approval"]["approvals"]] == [
        ("apikey:bob", "ticket CHG-1"),
        ("apikey:dave", None),
    ]
    assert cluster_objects(sim, grant["id"]) == expected_objects(grant["id"])

    events = await gated.events(grant["id"])
    assert [(e["type"], e["actor"]) for e in events][2:] == [
        ("approved", "apikey:bob"),
        ("approved", "apikey:dave"),
        ("activated", "apikey:dave"),
    ]
    assert events[2]["detail"] == {"reason": "ticket CHG-1", "approvals": 1, "required": 2}
    assert events[3]["detail"] == {"reason": None, "approvals": 2, "required": 2}
    activated_at = parse_time(events[4]["at"])
    expires_at = parse_time(active["expires_at"])
    assert expires_at == activated_at + timedelta(seconds=600)
    assert expires_at - parse_time(active["created_at"]) > timedelta(hours=3)

    # The requester uses it as any grant. Its lifetime cap (payments-ci: 7200 s) counts from
    # activation too: counted from the request, it would have passed an hour ago.
    kubeconfig = await gated.kubeconfig(grant["id"])
    assert kubeconfig.status_code == 200, kubeconfig.text
    renewed = await gated.request(
        "POST", f"/v1/grants/{grant['id']}/renew", json={"ttl_seconds": 3600}
    )
    assert renewed.status_code == 200, renewed.text
    assert parse_time(renewed.json()["expires_at"]) > activated_at + timedelta(seconds=3590)


async def test_approvers_see_pending_requests_but_never_credentials_nor_revoke(
    gated: Scangate,
) -> None:
    grant = await request_pending(gated)
    mine = await gated.request("GET", "/v1/grants?status=pending_approval", who="bob")
    assert [g["id"] for g in mine.json()["items"]] == [grant["id"]]
    # dave has no policy of its own: approving is all it can do.
    for who in ("bob", "dave"):
        listed = await gated.request("GET", "/v1/grants?status=pending_approval", who=who)
        assert [g["id"] for g in listed.json()["items"]] == [grant["id"]], who
        seen = await gated.get(grant["id"], who=who)
        assert seen.status_code == 200, seen.text
    # Without the filter, a listing stays the caller's own grants.
    assert (await gated.request("GET", "/v1/grants", who="dave")).json()["items"] == []
    # carol is no approver of payments-ci: nothing to see.
    listed = await gated.request("GET", "/v1/grants?status=pending_approval", who="carol")
    assert listed.json()["items"] == []
    assert_problem(await gated.get(grant["id"], who="carol"), 404, "grant-not-found")
    assert_problem(await approve(gated, grant["id"], "carol"), 404, "grant-not-found")

    await approve(gated, grant["id"], "bob")
    assert (await approve(gated, grant["id"], "dave")).json()["status"] == "active"
    for who in ("bob", "dave"):
        assert (await gated.get(grant["id"], who=who)).status_code == 200
        assert_problem(await gated.kubeconfig(grant["id"], who=who), 404, "grant-not-found")
        assert_problem(await gated.revoke(grant["id"], who=who), 404, "grant-not-found")
        renewed = await gated.request(
            "POST", f"/v1/grants/{grant['id']}/renew", who=who, json={"ttl_seconds": 60}
        )
        assert_problem(renewed, 404, "grant-not-found")
    assert await gated.status_of(grant["id"]) == "active"


async def test_the_requester_never_approves_its_own_request_by_default(gated: Scangate) -> None:
    grant = await request_pending(gated)
    body = assert_problem(await approve(gated, grant["id"], "alice"), 403, "self-approval-refused")
    assert "allow_self_approval" in body["detail"]
    # bob, also allowed to request under payments-ci, is an approver of alice's request.
    assert (await approve(gated, grant["id"], "bob")).status_code == 200
    # An admin is no approver unless the policy names it.
    body = assert_problem(await approve(gated, grant["id"], "root"), 403, "not-an-approver")
    assert body["policy"] == "payments-ci"
    assert len((await gated.get(grant["id"])).json()["approval"]["approvals"]) == 1


async def test_a_requester_that_is_no_approver_cannot_approve(
    configure: Callable[..., Deployment],
) -> None:
    deployment = configure(approval={"approvers": ["apikey:bob", "apikey:dave"]})
    async with deployment.running() as scangate:
        grant = await request_pending(scangate)
        body = assert_problem(await approve(scangate, grant["id"], "alice"), 403, "not-an-approver")
        assert "requester cannot approve" in body["detail"]


async def test_self_approval_counts_when_the_policy_allows_it(
    configure: Callable[..., Deployment], sim: KubesimHandle
) -> None:
    deployment = configure(approval={"required": 1, "allow_self_approval": True})
    async with deployment.running() as scangate:
        grant = await request_pending(scangate)
        approved = await approve(scangate, grant["id"], "alice", reason="break-glass")
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "active"
        assert cluster_objects(sim, grant["id"]) == expected_objects(grant["id"])


async def test_an_approver_decides_once(gated: Scangate) -> None:
    grant = await request_pending(gated)
    assert (await approve(gated, grant["id"], "bob")).status_code == 200
    body = assert_problem(await approve(gated, grant["id"], "bob"), 409, "already-decided")
    assert body["approver"] == "apikey:bob"
    assert_problem(await deny(gated, grant["id"], "bob", reason="changed my mind"), 409,
                   "already-decided")  # fmt: skip
    pending = (await gated.get(grant["id"])).json()
    assert pending["status"] == "pending_approval"
    assert len(pending["approval"]["approvals"]) == 1


async def test_one_denial_ends_the_request(gated: Scangate, sim: KubesimHandle) -> None:
    grant = await request_pending(gated)
    await approve(gated, grant["id"], "bob")
    for reason in (None, "   "):
        refused = await deny(
            gated, grant["id"], "dave", **({} if reason is None else {"reason": reason})
        )
        body = assert_problem(refused, 422, "validation")
        assert [e["field"] for e in body["errors"]] == ["body.reason"]

    denied = await deny(gated, grant["id"], "dave", reason="no change ticket")
    assert denied.status_code == 200, denied.text
    assert denied.json()["status"] == "denied"
    assert denied.json()["approval"]["denied_by"] == "apikey:dave"
    assert denied.json()["approval"]["denial_reason"] == "no change ticket"
    assert denied.json()["ended_at"] is not None
    events = await gated.events(grant["id"])
    assert (events[-1]["type"], events[-1]["actor"], events[-1]["detail"]) == (
        "denied", "apikey:dave", {"reason": "no change ticket"},
    )  # fmt: skip

    late = assert_problem(await approve(gated, grant["id"], "bob"), 409, "grant-not-pending")
    assert late["grant_status"] == "denied"
    listed = await gated.request("GET", "/v1/grants?status=denied")
    assert [g["id"] for g in listed.json()["items"]] == [grant["id"]]
    assert cluster_objects(sim, grant["id"]) == set()
    assert cluster_writes(sim) == []


async def test_a_decision_on_a_grant_that_is_not_pending_is_409_naming_its_status(
    configure: Callable[..., Deployment],
) -> None:
    deployment = configure(approval={"approvers": ["apikey:bob", "apikey:dave", "apikey:carol"]})
    async with deployment.running() as scangate:
        grant = await request_pending(scangate)
        await deny(scangate, grant["id"], "dave", reason="no")
        body = assert_problem(await approve(scangate, grant["id"], "bob"), 409, "grant-not-pending")
        assert body["grant_status"] == "denied"
        # A grant that never needed approval cannot be approved either.
        immediate = await scangate.create(namespace="orders", pods=["api-0"], who="carol")
        assert immediate.status_code == 201, immediate.text
        own = await approve(scangate, immediate.json()["id"], "carol")
        assert_problem(own, 403, "not-an-approver")


async def test_the_requester_may_withdraw_a_pending_request(
    gated: Scangate, sim: KubesimHandle
) -> None:
    grant = await request_pending(gated)
    assert_problem(await gated.revoke(grant["id"], who="bob"), 404, "grant-not-found")
    withdrawn = await gated.revoke(grant["id"], reason="scan cancelled")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "revoked"
    events = await gated.events(grant["id"])
    assert (events[-1]["type"], events[-1]["detail"]) == (
        "revoked", {"reason": "scan cancelled", "pending_approval": True},
    )  # fmt: skip
    body = assert_problem(await approve(gated, grant["id"], "bob"), 409, "grant-not-pending")
    assert body["grant_status"] == "revoked"
    assert (await gated.revoke(grant["id"])).json()["status"] == "revoked"  # idempotent
    assert cluster_writes(sim) == []


async def test_the_reaper_ends_requests_nobody_decided_on_in_time(
    configure: Callable[..., Deployment], sim: KubesimHandle
) -> None:
    deployment = configure(approval={"timeout_seconds": 1})
    async with deployment.running() as scangate:
        grant = await request_pending(scangate)
        await approve(scangate, grant["id"], "bob")
        # The reaper sleeps until the deadline (it was woken for it), then ends the request.
        assert await scangate.wait_for_status(grant["id"], {"approval_expired"}) == (
            "approval_expired"
        )
        events = await scangate.events(grant["id"])
        assert (events[-1]["type"], events[-1]["actor"]) == ("approval_expired", "scangate:reaper")
        body = assert_problem(await approve(scangate, grant["id"], "dave"), 409,
                              "grant-not-pending")  # fmt: skip
        assert body["grant_status"] == "approval_expired"
        ended = (await scangate.get(grant["id"])).json()
        assert ended["status"] == "approval_expired"
        assert ended["last_error"] is not None
    assert cluster_objects(sim, grant["id"]) == set()


async def test_approving_after_the_deadline_is_refused_even_before_the_reaper_runs(
    configure: Callable[..., Deployment],
) -> None:
    deployment = configure(approval={"timeout_seconds": 1})
    async with deployment.running(start_reaper=False) as scangate:
        grant = await request_pending(scangate)
        await asyncio.sleep(1.1)
        body = assert_problem(await approve(scangate, grant["id"], "bob"), 409,
                              "grant-not-pending")  # fmt: skip
        assert body["grant_status"] == "approval_expired"
        assert (await scangate.get(grant["id"])).json()["approval"]["approvals"] == []


@pytest.mark.parametrize("required", [1, 2])
async def test_of_two_final_approvals_at_once_exactly_one_provisions(
    configure: Callable[..., Deployment], sim: KubesimHandle, required: int
) -> None:
    deployment = configure(approval={"required": required})
    async with deployment.running() as scangate:
        for _ in range(3):
            grant = await request_pending(scangate)
            answers = await asyncio.gather(
                approve(scangate, grant["id"], "bob"), approve(scangate, grant["id"], "dave")
            )
            statuses = sorted(a.status_code for a in answers)
            if required == 2:
                # Both approvals count; the later one saw the earlier and provisioned.
                assert statuses == [200, 200], [a.text for a in answers]
            else:
                # The first provisions; the second finds the grant no longer pending.
                assert statuses == [200, 409], [a.text for a in answers]
            events = await scangate.events(grant["id"])
            assert [e["type"] for e in events].count("approved") == required
            assert [e["type"] for e in events].count("activated") == 1
            assert await scangate.status_of(grant["id"]) == "active"
            assert cluster_objects(sim, grant["id"]) == expected_objects(grant["id"])
        roles_created = [w for w in cluster_writes(sim) if w == ("create", "roles")]
        assert len(roles_created) == 3


async def test_a_withdrawal_racing_the_final_approval_still_ends_the_grant(
    configure: Callable[..., Deployment], sim: KubesimHandle
) -> None:
    deployment = configure(approval={"required": 1})
    async with deployment.running() as scangate:
        for attempt in range(4):
            grant = await request_pending(scangate)
            if attempt % 2:
                withdrawn, approved = await asyncio.gather(
                    scangate.revoke(grant["id"]), approve(scangate, grant["id"], "bob")
                )
            else:
                approved, withdrawn = await asyncio.gather(
                    approve(scangate, grant["id"], "bob"), scangate.revoke(grant["id"])
                )
            # Whichever locked the row first, the requester's withdrawal stands: the grant
            # ends revoked, and anything the approval created is deleted.
            assert approved.status_code in (200, 409), approved.text
            assert withdrawn.status_code in (200, 202), withdrawn.text
            status = await scangate.wait_for_status(grant["id"], {"revoked"})
            assert status == "revoked"
            assert cluster_objects(sim, grant["id"]) == set()


async def test_a_cluster_failure_after_the_last_approval_fails_the_grant_and_keeps_the_approval(
    configure: Callable[..., Deployment], sim: KubesimHandle
) -> None:
    deployment = configure(approval={"required": 1})
    async with deployment.running() as scangate:
        grant = await request_pending(scangate)
        sim.inject_fault(status=500, methods=["POST"], resources=["rolebindings"])
        answer = await approve(scangate, grant["id"], "bob", reason="ok")
        assert answer.status_code == 200, answer.text
        failed = answer.json()
        assert failed["status"] == "failed"
        assert failed["last_error"]
        assert [a["approver"] for a in failed["approval"]["approvals"]] == ["apikey:bob"]
        sim.clear_faults()
        assert cluster_objects(sim, grant["id"]) == set()


async def test_pending_requests_no_policy_allows_any_more_are_denied_by_scangate(
    configure: Callable[..., Deployment],
) -> None:
    deployment = configure()
    async with deployment.running() as scangate:
        kept = await request_pending(scangate)
        reaped = await request_pending(scangate)
        checked = await request_pending(scangate)
    # alice may no longer request under payments-ci; bob still may, and still approves.
    deployment.document["policies"][0]["subjects"] = ["apikey:bob"]
    deployment.reconfigure(policies=deployment.document["policies"])
    async with deployment.running(start_reaper=False) as scangate:
        # At approval: the approver is told, and the request is denied.
        body = assert_problem(await approve(scangate, checked["id"], "bob"), 409,
                              "grant-not-pending")  # fmt: skip
        assert body["grant_status"] == "denied"
        assert "no longer allowed" in body["detail"]
        assert (await scangate.revoke(kept["id"])).json()["status"] == "revoked"
    async with deployment.running() as scangate:
        # The reaper's pass at start denies the rest.
        assert await scangate.wait_for_status(reaped["id"], {"denied"}) == "denied"
        for grant in (reaped, checked):
            seen = (await scangate.get(grant["id"], who="root")).json()
            assert seen["approval"]["denied_by"] == "scangate:system"
            assert seen["approval"]["denial_reason"] == "policy no longer allows this grant"
            events = await scangate.events(grant["id"], who="root")
            assert (events[-1]["type"], events[-1]["actor"]) == ("denied", "scangate:system")
