"""Creating, reading and listing grants through the HTTP API, with the cluster checked from
outside (sim's admin view)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import kubernetes.client as k8s
import pytest

from app.kube.profiles import profile_rules
from kubesim.pytest_plugin import KubesimHandle
from tests.support.api_answers import assert_problem, parse_time
from tests.support.cluster_view import cluster_objects, expected_objects
from tests.support.scangate import Deployment, Scangate

pytestmark = pytest.mark.anyio

GRANT_FIELDS = {
    "id", "status", "cluster", "namespace", "scanner", "pods", "selector", "requester", "policy",
    "reason", "service_account", "created_at", "expires_at", "ended_at", "last_error",
    "containers", "exposure", "approval",
}  # fmt: skip


def role_of(sim: KubesimHandle, grant_id: str, namespace: str = "payments") -> Any:
    rbac = k8s.RbacAuthorizationV1Api(sim.admin_client())
    return rbac.read_namespaced_role(f"scangate-{grant_id}", namespace)


async def test_created_grant_is_active_and_has_exactly_its_objects(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    response = await scangate.create(pods=["web-0"], scanner="exec", reason="nightly scan")
    assert response.status_code == 201, response.text
    grant = response.json()
    grant_id = grant["id"]
    assert response.headers["location"] == f"/v1/grants/{grant_id}"
    assert set(grant) == GRANT_FIELDS
    assert grant | {"created_at": None, "expires_at": None} == {
        "id": grant_id,
        "status": "active",
        "cluster": "default",
        "namespace": "payments",
        "scanner": "exec",
        "pods": ["web-0"],
        "selector": None,
        "containers": None,
        # The seed's web-0: the default ServiceAccount, no token volume, no Secret or ConfigMap.
        "exposure": {
            "web-0": {
                "service_account": "default",
                "automount_service_account_token": None,
                "service_account_token": False,
                "secret_volumes": [],
                "secret_env": {},
                "configmap_volumes": [],
                "configmap_env": {},
            }
        },
        "requester": "apikey:alice",
        "policy": "payments-ci",
        "reason": "nightly scan",
        "service_account": f"system:serviceaccount:scangate-grants:scangate-{grant_id}",
        "created_at": None,
        "expires_at": None,
        "ended_at": None,
        "last_error": None,
        "approval": None,  # the policy asks for none
    }
    created, expires = parse_time(grant["created_at"]), parse_time(grant["expires_at"])
    assert expires - created == timedelta(seconds=900)  # the default TTL

    assert cluster_objects(sim, grant_id) == expected_objects(grant_id)
    role = role_of(sim, grant_id)
    rules = [
        {
            "apiGroups": r.api_groups,
            "resources": r.resources,
            "verbs": r.verbs,
            "resourceNames": r.resource_names,
        }
        for r in role.rules
    ]
    assert rules == profile_rules("exec", ["web-0"])
    assert role.metadata.labels["app.kubernetes.io/managed-by"] == "scangate"
    assert role.metadata.labels["scangate.dev/grant"] == grant_id

    fetched = await scangate.get(grant_id)
    assert fetched.status_code == 200
    assert fetched.json() == grant
    events = await scangate.events(grant_id)
    assert [e["type"] for e in events] == ["requested", "activated"]
    assert {e["actor"] for e in events} == {"apikey:alice"}
    assert events[0]["detail"]["ttl_seconds"] == 900
    assert events[1]["detail"]["pods"] == ["web-0"]


async def test_ttl_is_bounded_by_the_policy(scangate: Scangate) -> None:
    body = assert_problem(await scangate.create(ttl_seconds=3601), 422, "ttl-too-long")
    assert body["errors"][0]["field"] == "body.ttl_seconds"
    grant = await scangate.grant(ttl_seconds=3600)
    lifetime = parse_time(grant["expires_at"]) - parse_time(grant["created_at"])
    assert lifetime == timedelta(seconds=3600)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pods": ["web-0"], "selector": "app=web"}, "body"),
        ({"pods": ["Web_0"]}, "body.pods[0]"),
        ({"namespace": "Payments"}, "body.namespace"),
        ({"scanner": "shell"}, "body.scanner"),
        ({"ttl_seconds": 5}, "body.ttl_seconds"),
        ({"selector": "app in (web"}, "body.selector"),
    ],
)
async def test_invalid_requests_are_problems_naming_the_field_and_create_nothing(
    scangate: Scangate, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await scangate.create(**body), 422, "validation")
    assert field in [e["field"] for e in problem["errors"]]
    listing = await scangate.request("GET", "/v1/grants")
    assert listing.json()["items"] == []


async def rejected_grants(scangate: Scangate, who: str = "alice") -> list[dict[str, Any]]:
    """The caller's refused requests: only listed when asked for by status."""
    params = {"status": "rejected"}
    items: list[dict[str, Any]] = (
        await scangate.request("GET", "/v1/grants", who=who, params=params)
    ).json()["items"]
    return items


async def test_a_grant_keeps_the_containers_the_guard_limits_it_to(scangate: Scangate) -> None:
    grant = await scangate.grant(scanner="debug", containers=["scanner", "app"])
    assert grant["containers"] == ["app", "scanner"]
    shown = await scangate.get(grant["id"])
    assert shown.json()["containers"] == ["app", "scanner"]
    [requested] = [e for e in await scangate.events(grant["id"]) if e["type"] == "requested"]
    assert requested["detail"]["containers"] == ["app", "scanner"]

    bad = await scangate.create(containers=["App"])
    problem = assert_problem(bad, 422, "validation")
    assert [e["field"] for e in problem["errors"]] == ["body.containers[0]"]


async def test_missing_namespace_rejects_the_grant_with_422(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    # carol's policy allows "missing-*", so only the cluster can say no.
    response = await scangate.create(who="carol", namespace="missing-ns", pods=["api-0"])
    body = assert_problem(response, 422, "namespace-not-found")
    assert "missing-ns" in body["detail"]
    # A refusal of the request's content is not a failed grant: out of the default listing...
    assert (await scangate.request("GET", "/v1/grants", who="carol")).json()["items"] == []
    # ...but kept, with its reason and audit trail.
    [rejected] = await rejected_grants(scangate, who="carol")
    assert rejected["status"] == "rejected"
    assert "missing-ns" in rejected["last_error"]
    assert rejected["ended_at"] is not None
    assert cluster_objects(sim, rejected["id"]) == set()
    assert [e["type"] for e in await scangate.events(rejected["id"], who="carol")] == [
        "requested",
        "rejected",
    ]
    one = await scangate.request("GET", f"/v1/grants/{rejected['id']}", who="carol")
    assert one.json()["status"] == "rejected"


async def test_missing_pods_are_named(scangate: Scangate, sim: KubesimHandle) -> None:
    response = await scangate.create(pods=["web-0", "nope-2", "nope-1"])
    body = assert_problem(response, 422, "pods-not-found")
    assert body["pods"] == ["nope-1", "nope-2"]
    assert "nope-1" in body["detail"]
    assert "nope-2" in body["detail"]
    assert "web-0" not in body["detail"]
    assert (await scangate.request("GET", "/v1/grants")).json()["items"] == []
    [rejected] = await rejected_grants(scangate)
    assert rejected["status"] == "rejected"
    assert cluster_objects(sim, rejected["id"]) == set()


async def test_selector_resolves_to_exactly_the_running_matching_pods(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    # app=web matches web-0, web-1 (Running) and web-2 (Pending): only Running pods count.
    grant = await scangate.grant(selector="app=web")
    assert grant["pods"] == ["web-0", "web-1"]
    assert grant["selector"] == "app=web"
    role = role_of(sim, grant["id"])
    assert {tuple(rule.resource_names) for rule in role.rules} == {("web-0", "web-1")}

    narrower = await scangate.grant(selector="app=web,tier=frontend")
    assert narrower["pods"] == ["web-0", "web-1"]
    databases = await scangate.grant(selector="app in (db, api)")
    assert databases["pods"] == ["db-0"]


@pytest.mark.parametrize("selector", ["app=nothing", "app=web,tier notin (frontend)"])
async def test_selector_without_a_running_match_is_422(
    scangate: Scangate, sim: KubesimHandle, selector: str
) -> None:
    body = assert_problem(await scangate.create(selector=selector), 422, "no-pods-match")
    assert body["errors"][0]["field"] == "body.selector"
    assert (await scangate.request("GET", "/v1/grants")).json()["items"] == []
    [rejected] = await rejected_grants(scangate)
    assert rejected["status"] == "rejected"
    assert cluster_objects(sim, rejected["id"]) == set()


async def test_more_pods_than_the_policy_allows_is_422(
    deployment: Deployment, sim: KubesimHandle
) -> None:
    deployment.document["policies"][0]["max_pods"] = 1
    deployment.reconfigure()
    async with deployment.running() as scangate:
        body = assert_problem(await scangate.create(pods=["web-0", "web-1"]), 422, "too-many-pods")
        assert body["max_pods"] == 1
        # Refused before anything was recorded: the request alone says it is too big.
        assert (await scangate.request("GET", "/v1/grants")).json()["items"] == []

        body = assert_problem(await scangate.create(selector="app=web"), 422, "too-many-pods")
        assert body["pods"] == ["web-0", "web-1"]
        assert (await scangate.request("GET", "/v1/grants")).json()["items"] == []
        [rejected] = await rejected_grants(scangate)
        assert rejected["status"] == "rejected"
        assert cluster_objects(sim) == set()


async def test_sidecar_grants_need_the_sidecar_container_in_every_pod(
    scangate: Scangate, sim: KubesimHandle
) -> None:
    response = await scangate.create(scanner="sidecar", pods=["web-0", "db-0"])
    body = assert_problem(response, 422, "sidecar-missing")
    assert body["pods"] == ["db-0"]
    [rejected] = await rejected_grants(scangate)
    assert (rejected["status"], rejected["scanner"]) == ("rejected", "sidecar")
    assert body["container"] == "scanner"
    grant = await scangate.grant(scanner="sidecar", pods=["web-0", "web-1"])
    assert grant["scanner"] == "sidecar"
    assert cluster_objects(sim) == expected_objects(grant["id"])


async def test_unknown_cluster_is_422(scangate: Scangate) -> None:
    body = assert_problem(await scangate.create(cluster="elsewhere"), 422, "unknown-cluster")
    assert body["errors"][0]["field"] == "body.cluster"


async def test_unauthenticated_requests_are_401(scangate: Scangate) -> None:
    response = await scangate.http.get("/v1/grants")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_listing_filters_and_pages_newest_first(scangate: Scangate) -> None:
    mine = [(await scangate.grant())["id"] for _ in range(5)]
    bobs = (await scangate.grant(who="bob"))["id"]
    revoked = await scangate.revoke(mine[0])
    assert revoked.status_code == 200

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await scangate.request("GET", "/v1/grants", params=params)).json()
        seen += [g["id"] for g in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine))

    active = (await scangate.request("GET", "/v1/grants", params={"status": "active"})).json()
    assert [g["id"] for g in active["items"]] == list(reversed(mine[1:]))
    assert (await scangate.request("GET", "/v1/grants", params={"namespace": "orders"})).json()[
        "items"
    ] == []
    everything = (await scangate.request("GET", "/v1/grants", who="root")).json()["items"]
    assert {g["id"] for g in everything} == {*mine, bobs}

    bad = await scangate.request("GET", "/v1/grants", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    bad = await scangate.request("GET", "/v1/grants", params={"status": "sleeping"})
    assert bad.status_code == 422
