"""A policy's small controls (README "Policies"): `require_reason` (422 naming body.reason) and
`max_active_grants` per principal (409 naming the limit), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kubesim.pytest_plugin import KubesimHandle
from tests.support.api_answers import assert_problem
from tests.support.cluster_view import cluster_objects
from tests.support.scangate import Deployment

pytestmark = pytest.mark.anyio


@pytest.fixture
def configure(deployment: Deployment) -> Callable[..., Deployment]:
    """Set keys of the payments-ci policy before starting the service."""

    def apply(**policy: Any) -> Deployment:
        deployment.document["policies"][0].update(policy)
        deployment.reconfigure(policies=deployment.document["policies"])
        return deployment

    return apply


async def test_a_policy_requiring_a_reason_refuses_requests_without_one(
    configure: Callable[..., Deployment], sim: KubesimHandle
) -> None:
    async with configure(require_reason=True).running() as scangate:
        for reason in (None, "", "  \t "):
            body = {} if reason is None else {"reason": reason}
            problem = assert_problem(await scangate.create(**body), 422, "reason-required")
            assert problem["errors"] == [{"field": "body.reason", "message": problem["detail"]}]
            assert "payments-ci" in problem["detail"]
        assert cluster_objects(sim) == set()
        granted = await scangate.create(reason="weekly CIS scan")
        assert granted.status_code == 201, granted.text
        # Other policies are not affected.
        other = await scangate.create(who="carol", namespace="orders", pods=["api-0"])
        assert other.status_code == 201, other.text


async def test_max_active_grants_refuses_the_grant_beyond_the_limit_naming_it(
    configure: Callable[..., Deployment],
) -> None:
    async with configure(max_active_grants=2).running() as scangate:
        first = await scangate.grant()
        await scangate.grant()
        refused = assert_problem(await scangate.create(), 409, "active-grant-limit-reached")
        assert refused["max_active_grants"] == 2
        assert refused["policy"] == "payments-ci"
        assert "max_active_grants is 2" in refused["detail"]
        # Per principal: bob, under the same policy, has his own count.
        await scangate.grant(who="bob")
        # An ended grant no longer counts.
        assert (await scangate.revoke(first["id"])).json()["status"] == "revoked"
        await scangate.grant()
        assert_problem(await scangate.create(), 409, "active-grant-limit-reached")
        # Nothing was recorded for the refused requests.
        listed = await scangate.request("GET", "/v1/grants?limit=100")
        assert len(listed.json()["items"]) == 3


async def test_concurrent_requests_never_exceed_max_active_grants(
    configure: Callable[..., Deployment],
) -> None:
    async with configure(max_active_grants=2).running() as scangate:
        answers = await asyncio.gather(*(scangate.create() for _ in range(6)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201, 201, 409, 409, 409, 409], [a.text for a in answers]
        listed = await scangate.request("GET", "/v1/grants?limit=100")
        assert [g["status"] for g in listed.json()["items"]] == ["active", "active"]


async def test_pending_requests_count_against_max_active_grants(
    configure: Callable[..., Deployment],
) -> None:
    deployment = configure(
        max_active_grants=1, approval={"required": 1, "approvers": ["apikey:bob"]}
    )
    async with deployment.running() as scangate:
        pending = await scangate.create()
        assert pending.status_code == 202, pending.text
        assert_problem(await scangate.create(), 409, "active-grant-limit-reached")
        await scangate.revoke(pending.json()["id"])
        assert (await scangate.create()).status_code == 202
