"""Kubeconfig, revoke, expiry and renew: access ends when it should, for real, in the cluster."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import anyio
import pytest
import yaml

from app.grants.clock import utcnow
from kubesim.pytest_plugin import KubesimHandle
from tests.support.api_answers import assert_problem, parse_time
from tests.support.cluster_view import cluster_objects, expected_objects, token_of, token_status
from tests.support.scangate import Deployment, Scangate

# A revoked or expired grant's token is *denied*: 401 once its ServiceAccount is gone and the
# apiserver's token cache (10 s) has let go of it, 403 while a cached authentication meets the
# deleted RoleBinding. A real cluster gives either; a test must not assume which.
DENIED = (401, 403)

pytestmark = pytest.mark.anyio


async def test_kubeconfig_is_yaml_or_json_never_cached_and_rotates_tokens(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    grant = await scangate.grant()
    first = await scangate.kubeconfig(grant["id"])
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/yaml")
    assert first.headers["cache-control"] == "no-store"
    document = yaml.safe_load(first.text)
    assert [c["name"] for c in document["contexts"]] == [f"scangate-{grant['id']}"]
    assert document["clusters"][0]["cluster"]["server"] == sim.url

    second = await scangate.request(
        "GET", f"/v1/grants/{grant['id']}/kubeconfig", params={"format": "json"}
    )
    assert second.headers["content-type"].startswith("application/json")
    assert second.headers["cache-control"] == "no-store"
    tokens = [token_of(first.text), json.loads(second.text)["users"][0]["user"]["token"]]
    assert tokens[0] != tokens[1]  # every fetch mints a new token
    for token in tokens:
        assert token_status(sim, token) == 200

    fetches = [e for e in await scangate.events(grant["id"]) if e["type"] == "kubeconfig_issued"]
    assert len(fetches) == 2
    assert {e["actor"] for e in fetches} == {"apikey:alice"}
    # TokenRequest minimum is 600 s; a 900 s grant asks for its remaining ~900 s.
    assert 600 <= fetches[0]["detail"]["expiration_seconds"] <= 900


async def test_short_grants_still_request_the_tokenrequest_minimum(scangate: Scangate) -> None:
    grant = await scangate.grant(ttl_seconds=60)
    assert (await scangate.kubeconfig(grant["id"])).status_code == 200
    [fetch] = [e for e in await scangate.events(grant["id"]) if e["type"] == "kubeconfig_issued"]
    assert fetch["detail"]["expiration_seconds"] == 600


async def test_revoked_grant_token_is_rejected(scangate: Scangate, sim: KubesimHandle) -> None:
    grant = await scangate.grant()
    token = token_of((await scangate.kubeconfig(grant["id"])).text)
    assert token_status(sim, token) == 200

    response = await scangate.revoke(grant["id"], reason="scan finished")
    assert response.status_code == 200, response.text
    revoked = response.json()
    assert revoked["status"] == "revoked"
    assert revoked["ended_at"] is not None
    assert token_status(sim, token) in DENIED
    assert cluster_objects(sim, grant["id"]) == set()

    again = await scangate.revoke(grant["id"])
    assert again.status_code == 200
    assert again.json() == revoked  # idempotent: nothing changes
    assert_problem(await scangate.kubeconfig(grant["id"]), 409, "grant-not-active")

    events = await scangate.events(grant["id"])
    assert [e["type"] for e in events][-2:] == ["revoking", "revoked"]
    assert events[-2]["detail"]["reason"] == "scan finished"


def deletions(sim: KubesimHandle, grant_id: str = "") -> list[str]:
    """The resources of the DELETE requests kubesim served (for `grant_id`'s objects, all named
    after it, if given), in the order it served them."""
    return [
        r["resource"] for r in sim.requests() if r["verb"] == "delete" and grant_id in r["name"]
    ]


async def test_revocation_deletes_the_rolebinding_before_the_account_and_role(
    scangate_without_reaper: Scangate, sim: KubesimHandle
) -> None:
    # A real API server may still authenticate a deleted ServiceAccount's token from its
    # cache; a deleted RoleBinding denies the token's next request at once.
    # Without the reaper: its sweep may list the grant's objects while the revocation deletes
    # them and then, the grant revoked, ask for their deletion once more (answered 404); the
    # order under test is the revocation's own.
    scangate = scangate_without_reaper
    grant = await scangate.grant()
    assert (await scangate.revoke(grant["id"])).status_code == 200

    deleted = deletions(sim, grant["id"])
    assert sorted(deleted) == ["rolebindings", "roles", "serviceaccounts"]
    assert deleted[0] == "rolebindings"


async def test_cleanup_after_a_failed_grant_deletes_the_rolebinding_first(
    scangate_without_reaper: Scangate, sim: KubesimHandle
) -> None:
    scangate = scangate_without_reaper
    # The last step fails: the request deletes what it created, in the revocation order.
    sim.inject_fault(status=403, methods=["POST"], resources=["rolebindings"])
    response = await scangate.create()
    assert response.status_code == 502, response.text

    # Every delete is preceded by a read of the object (is it still ours?); the RoleBinding
    # was never created, so its read answers 404 and no DELETE follows. It is still the
    # first object handled, before the ServiceAccount and the Role are deleted.
    handled = [
        (r["verb"], r["resource"])
        for r in sim.requests()
        if r["verb"] in ("get", "delete")
        and r["resource"] in ("rolebindings", "roles", "serviceaccounts")
    ]
    assert handled[0] == ("get", "rolebindings")
    assert sorted(deletions(sim)) == ["roles", "serviceaccounts"]
    assert cluster_objects(sim) == set()


async def test_expired_grant_token_is_rejected_within_two_seconds(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    # A long grant first, so the reaper is asleep until far in the future: the short grant
    # must wake it up (the reaper sleeps until the next expiry, it does not poll).
    long_lived = await scangate.grant(ttl_seconds=3600)
    grant = await scangate.grant(ttl_seconds=30)
    token = token_of((await scangate.kubeconfig(grant["id"])).text)
    expires_at = parse_time(grant["expires_at"]).timestamp()
    assert token_status(sim, token) == 200

    await anyio.sleep(max(0.0, expires_at - time.time() - 0.5))
    status = await asyncio.to_thread(token_status, sim, token)
    assert status == 200  # not before its time
    while status not in DENIED and time.time() < expires_at + 5:
        await anyio.sleep(0.05)
        status = await asyncio.to_thread(token_status, sim, token)
    lag = time.time() - expires_at
    assert status in DENIED
    assert lag < 2.0, f"token still worked {lag:.2f} s after expiry"

    assert await scangate.wait_for_status(grant["id"], {"expired"}) == "expired"
    assert cluster_objects(sim, grant["id"]) == set()
    ended = (await scangate.get(grant["id"])).json()
    assert ended["status"] == "expired"
    assert [e["type"] for e in await scangate.events(grant["id"])][-2:] == ["revoking", "expired"]
    assert await scangate.status_of(long_lived["id"]) == "active"
    assert cluster_objects(sim, long_lived["id"]) == expected_objects(long_lived["id"])


async def test_expiry_ends_access_promptly(scangate: Scangate, sim: KubesimHandle) -> None:
    grant = await scangate.grant()
    token = token_of((await scangate.kubeconfig(grant["id"])).text)
    moment = await scangate.expire_soon(grant["id"], seconds=0.5)
    assert await scangate.wait_for_status(grant["id"], {"expired"}, within=5) == "expired"
    lag = parse_time((await scangate.get(grant["id"])).json()["ended_at"]) - moment
    assert lag < timedelta(seconds=1)
    assert token_status(sim, token) in DENIED
    assert_problem(await scangate.kubeconfig(grant["id"]), 409, "grant-not-active")
    assert_problem(
        await scangate.request("POST", f"/v1/grants/{grant['id']}/renew", json={"ttl_seconds": 60}),
        409,
        "grant-not-active",
    )


async def test_renew_extends_but_never_past_the_lifetime_cap(
    deployment: Deployment, sim: KubesimHandle
) -> None:
    policy = deployment.document["policies"][0]
    policy.update(max_ttl_seconds=120, max_lifetime_seconds=120)
    deployment.reconfigure()
    async with deployment.running() as scangate:
        grant = await scangate.grant(ttl_seconds=60)
        created = parse_time(grant["created_at"])
        cap = created + timedelta(seconds=120)
        path = f"/v1/grants/{grant['id']}/renew"

        assert_problem(
            await scangate.request("POST", path, json={"ttl_seconds": 121}), 422, "ttl-too-long"
        )
        before = utcnow()
        extended = await scangate.request("POST", path, json={"ttl_seconds": 90})
        assert extended.status_code == 200, extended.text
        expires = parse_time(extended.json()["expires_at"])
        assert before + timedelta(seconds=90) <= expires < cap  # a plain extension

        capped = await scangate.request("POST", path, json={"ttl_seconds": 120})
        assert capped.status_code == 200, capped.text
        assert parse_time(capped.json()["expires_at"]) == cap  # now + 120 would pass the cap

        refused = await scangate.request("POST", path, json={"ttl_seconds": 120})
        assert_problem(refused, 409, "lifetime-cap-reached")
        current = (await scangate.get(grant["id"])).json()
        assert parse_time(current["expires_at"]) == cap

        renewals = [e for e in await scangate.events(grant["id"]) if e["type"] == "renewed"]
        assert [e["detail"]["capped"] for e in renewals] == [False, True]
        assert renewals[-1]["detail"]["expires_at"] == current["expires_at"]


@pytest.mark.parametrize(
    "fault",
    [{"status": 503}, {"status": None, "drop_connection": True}],
    ids=["503", "connection-dropped"],
)
async def test_revocation_survives_a_failing_cluster(
    scangate: Scangate, sim: KubesimHandle, fault: dict[str, Any]
) -> None:
    grant = await scangate.grant()
    token = token_of((await scangate.kubeconfig(grant["id"])).text)
    sim.inject_fault(methods=["DELETE"], **fault)

    response = await scangate.revoke(grant["id"])
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "revoking"
    assert response.json()["last_error"]

    sim.clear_faults()
    # The reaper retries with backoff (1 s, 2 s, ...) and finishes the job.
    assert await scangate.wait_for_status(grant["id"], {"revoked"}, within=15) == "revoked"
    assert token_status(sim, token) in DENIED
    assert cluster_objects(sim, grant["id"]) == set()
    types = [e["type"] for e in await scangate.events(grant["id"])]
    assert "revocation_failed" in types
    assert types[-1] == "revoked"
    assert (await scangate.get(grant["id"])).json()["last_error"] is None
