"""Principals never see or touch each other's grants (404, so ids do not leak); admins see and
revoke everything but never obtain credentials; policies deny what they should."""

from __future__ import annotations

from typing import Any

import pytest

from app.grants.ids import new_grant_id
from kubesim.pytest_plugin import KubesimHandle
from tests.support.api_answers import assert_problem
from tests.support.cluster_view import cluster_objects, expected_objects
from tests.support.scangate import Scangate

pytestmark = pytest.mark.anyio


async def test_principal_cannot_see_fetch_renew_or_revoke_anothers_grant(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    grant = await scangate.grant(who="alice")
    grant_id = grant["id"]
    attempts = [
        ("GET", f"/v1/grants/{grant_id}", None),
        ("GET", f"/v1/grants/{grant_id}/kubeconfig", None),
        ("GET", f"/v1/grants/{grant_id}/events", None),
        ("POST", f"/v1/grants/{grant_id}/renew", {"ttl_seconds": 600}),
        ("POST", f"/v1/grants/{grant_id}/revoke", {}),
    ]
    for method, path, body in attempts:
        response = await scangate.request(method, path, who="bob", json=body)
        problem = assert_problem(response, 404, "grant-not-found")
        # Indistinguishable from an id that does not exist at all.
        unknown = await scangate.request(
            method, path.replace(grant_id, new_grant_id()), who="bob", json=body
        )
        assert unknown.status_code == 404
        assert problem["title"] == unknown.json()["title"]
    assert (await scangate.request("GET", "/v1/grants", who="bob")).json()["items"] == []

    assert await scangate.status_of(grant_id) == "active"
    assert cluster_objects(sim, grant_id) == expected_objects(grant_id)
    assert {e["actor"] for e in await scangate.events(grant_id)} == {"apikey:alice"}


async def test_admin_lists_and_revokes_any_grant_but_gets_no_credentials(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    alices = await scangate.grant(who="alice")
    bobs = await scangate.grant(who="bob")
    listing = (await scangate.request("GET", "/v1/grants", who="root")).json()["items"]
    assert {g["id"] for g in listing} == {alices["id"], bobs["id"]}
    assert (await scangate.get(alices["id"], who="root")).status_code == 200

    assert_problem(
        await scangate.kubeconfig(alices["id"], who="root"), 403, "credentials-forbidden"
    )
    renew = await scangate.request(
        "POST", f"/v1/grants/{alices['id']}/renew", who="root", json={"ttl_seconds": 600}
    )
    assert_problem(renew, 403, "credentials-forbidden")

    revoked = await scangate.revoke(alices["id"], who="root", reason="incident 42")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert cluster_objects(sim, alices["id"]) == set()
    revoking = [e for e in await scangate.events(alices["id"]) if e["type"] == "revoking"]
    assert [(e["actor"], e["detail"]["reason"]) for e in revoking] == [
        ("apikey:root", "incident 42")
    ]
    assert await scangate.status_of(bobs["id"]) == "active"


@pytest.mark.parametrize(
    ("who", "body", "denied"),
    [
        ("alice", {"namespace": "orders", "pods": ["api-0"]}, "namespace"),
        ("alice", {"namespace": "kube-system", "pods": ["web-0"]}, "namespace"),
        ("alice", {"namespace": "scangate-grants", "pods": ["web-0"]}, "namespace"),
        ("carol", {"namespace": "orders", "pods": ["api-0"], "scanner": "debug"}, "scanner"),
        ("root", {"namespace": "payments", "pods": ["web-0"]}, "principal"),
    ],
)
async def test_policies_deny_with_403_and_create_nothing(
    scangate: Scangate, sim: KubesimHandle, who: str, body: dict[str, Any], denied: str
) -> None:
    problem = assert_problem(await scangate.create(who=who, **body), 403, "policy-denied")
    assert problem["denied"] == denied
    assert (await scangate.request("GET", "/v1/grants", who="root")).json()["items"] == []
    assert cluster_objects(sim) == set()


async def test_policy_allows_what_it_names(scangate: Scangate, sim: KubesimHandle) -> None:
    grant = await scangate.grant(who="carol", namespace="orders", pods=["api-0"], ttl_seconds=600)
    assert grant["policy"] == "orders-exec"
    assert cluster_objects(sim, grant["id"]) == expected_objects(grant["id"], "orders")
