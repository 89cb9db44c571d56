"""Policy is checked on every use of a grant: after a restart with settings that no longer allow
a grant (its policy removed), fetching its kubeconfig or renewing it is refused with a 403
naming why, and the reaper ends it (objects gone, an audit event naming why), while grants
today's policies still allow are left alone. On SQLite and PostgreSQL, the same database and
kubesim across the restart."""

from __future__ import annotations

from typing import Any

import kubernetes.client as k8s
import pytest

from app.main import reaper_pass

pytestmark = pytest.mark.anyio

PROBLEM_TYPE = "https://scangate.dev/problems/grant-no-longer-allowed"


def objects_of(sim: Any, grant_id: str) -> set[tuple[str, str]]:
    api = sim.admin_client()
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    selector = f"scangate.dev/grant={grant_id}"
    found: set[tuple[str, str]] = set()
    for kind, listing in (
        ("ServiceAccount", core.list_service_account_for_all_namespaces(label_selector=selector)),
        ("Role", rbac.list_role_for_all_namespaces(label_selector=selector)),
        ("RoleBinding", rbac.list_role_binding_for_all_namespaces(label_selector=selector)),
    ):
        found |= {(kind, item.metadata.namespace) for item in listing.items}
    return found


def without_payments_policy(deployment: Any) -> None:
    """Restart material: the same configuration minus the policy alice's grants came from."""
    policies = [p for p in deployment.document["policies"] if p["name"] != "payments-ci"]
    deployment.reconfigure(policies=policies)


async def test_a_grant_whose_policy_is_removed_gets_no_credentials_and_is_revoked(
    deployment: Any, sim: Any
) -> None:
    async with deployment.running(start_reaper=False) as before:
        grant = await before.grant("alice")
        assert (await before.kubeconfig(grant["id"])).status_code == 200

    without_payments_policy(deployment)
    async with deployment.running(start_reaper=False) as after:
        refused = await after.kubeconfig(grant["id"])
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["type"] == PROBLEM_TYPE
        assert problem["detail"] == (
            f"grant {grant['id']!r} is no longer allowed: no policy applies to apikey:alice"
        )
        assert problem["denied"] == "principal"
        renewal = await after.request(
            "POST", f"/v1/grants/{grant['id']}/renew", json={"ttl_seconds": 600}
        )
        assert renewal.status_code == 403, renewal.text
        assert renewal.json()["type"] == PROBLEM_TYPE
        assert renewal.json()["detail"] == problem["detail"]
        assert [e["type"] for e in await after.events(grant["id"])].count(
            "kubeconfig_issued"
        ) == 1  # only the fetch made before the restart
        assert len(objects_of(sim, grant["id"])) == 3  # the refusal itself ends nothing

        # What the reaper does first on every start.
        report = await reaper_pass(after.services).run(sweep=False)
        assert report.errors == []
        assert report.disallowed == 1
        assert await after.status_of(grant["id"]) == "revoked"
        assert objects_of(sim, grant["id"]) == set()
        events = await after.events(grant["id"])
        revoking = next(e for e in events if e["type"] == "revoking")
        assert revoking["actor"] == "scangate:reaper"
        assert revoking["detail"]["reason"] == "policy no longer allows this grant"
        assert revoking["detail"]["policy"] == problem["detail"]
        assert events[-1]["type"] == "revoked"
        assert events[-1]["detail"]["reason"] == "policy no longer allows this grant"


async def test_the_reaper_ends_only_grants_no_policy_allows_when_the_service_restarts(
    deployment: Any, sim: Any
) -> None:
    async with deployment.running(start_reaper=False) as before:
        disallowed = await before.grant("alice")
        allowed = await before.grant("carol", namespace="orders", pods=["api-0"], scanner="exec")

    without_payments_policy(deployment)
    async with deployment.running() as after:  # the reaper starts with the app
        assert await after.wait_for_status(disallowed["id"], {"revoked"}) == "revoked"
        assert objects_of(sim, disallowed["id"]) == set()
        assert await after.status_of(allowed["id"]) == "active"
        assert len(objects_of(sim, allowed["id"])) == 3
        fetched = await after.kubeconfig(allowed["id"], who="carol")
        assert fetched.status_code == 200, fetched.text
