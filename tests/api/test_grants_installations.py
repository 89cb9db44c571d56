"""Two scangate installations over the same target namespace of one cluster, each with its own
database and grants namespace, never touch each other's objects: each sweep judges only objects
carrying its own installation label, so a live grant of one keeps its access while the other
sweeps, and each still sweeps its own orphans."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import kubernetes.client as k8s
import pytest
import yaml
from sqlalchemy import update

from app.db.models import Grant, GrantStatus
from app.main import reaper_pass

pytestmark = pytest.mark.anyio


def objects_of(sim: Any, grant_id: str) -> dict[tuple[str, str], dict[str, str]]:
    """{(kind, namespace): labels} of the grant's objects, read as the cluster's admin."""
    api = sim.admin_client()
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    selector = f"scangate.dev/grant={grant_id}"
    found: dict[tuple[str, str], dict[str, str]] = {}
    for kind, items in (
        ("ServiceAccount", core.list_service_account_for_all_namespaces(label_selector=selector)),
        ("Role", rbac.list_role_for_all_namespaces(label_selector=selector)),
        ("RoleBinding", rbac.list_role_binding_for_all_namespaces(label_selector=selector)),
    ):
        for item in items.items:
            found[(kind, item.metadata.namespace)] = dict(item.metadata.labels)
    return found


async def reads_its_pod(scangate: Any, sim: Any, grant_id: str) -> int:
    """What the cluster answers the grant's freshly issued token for its pod."""
    response = await scangate.kubeconfig(grant_id)
    assert response.status_code == 200, response.text
    token = yaml.safe_load(response.text)["users"][0]["user"]["token"]
    verify = ssl.create_default_context(cadata=sim.ca_cert_pem.decode())
    async with httpx.AsyncClient(verify=verify, timeout=10) as http:
        answer = await http.get(
            f"{sim.url}/api/v1/namespaces/payments/pods/web-0",
            headers={"Authorization": f"Bearer {token}"},
        )
    return answer.status_code


async def test_each_installation_labels_its_objects_and_sweeps_only_its_own(
    deployment: Any, other_installation: Any, sim: Any
) -> None:
    async with (
        deployment.running(start_reaper=False) as first,
        other_installation.running(start_reaper=False) as second,
    ):
        mine = (await first.grant())["id"]
        theirs = (await second.grant())["id"]
        assert {
            labels["scangate.dev/installation"] for labels in objects_of(sim, mine).values()
        } == {"scangate-grants"}
        assert set(objects_of(sim, theirs)) == {
            ("ServiceAccount", "scangate-grants-b"), ("Role", "payments"),
            ("RoleBinding", "payments"),
        }  # fmt: skip
        assert {
            labels["scangate.dev/installation"] for labels in objects_of(sim, theirs).values()
        } == {"scangate-grants-b"}

        # Each grant is unknown to the other's database: before installation labels, each
        # sweep took the other's objects for orphans and deleted them.
        assert await first.services.ender.sweep("default") == 0
        assert len(objects_of(sim, theirs)) == 3
        assert await reads_its_pod(second, sim, theirs) == 200
        assert await second.services.ender.sweep("default") == 0
        assert len(objects_of(sim, mine)) == 3
        assert await reads_its_pod(first, sim, mine) == 200

        # A real orphan of the second installation (its grant ended, its objects left behind)
        # is still swept, by the second installation only.
        async with second.services.db.session() as session:
            await session.execute(
                update(Grant).where(Grant.id == theirs).values(status=GrantStatus.FAILED)
            )
        assert await first.services.ender.sweep("default") == 0
        assert len(objects_of(sim, theirs)) == 3
        assert await second.services.ender.sweep("default") == 3
        assert objects_of(sim, theirs) == {}
        assert len(objects_of(sim, mine)) == 3
        assert await reads_its_pod(first, sim, mine) == 200


async def test_a_live_grant_keeps_access_while_the_other_installation_reaps(
    deployment: Any, other_installation: Any, sim: Any
) -> None:
    async with (
        deployment.running() as first,
        other_installation.running(start_reaper=False) as second,
    ):
        theirs = (await second.grant())["id"]
        mine = (await first.grant())["id"]
        # The first installation's reaper sweeps at start and ends its own grants; a full
        # pass (expire, sweep) of the first never reaches the second's grant.
        await first.expire_soon(mine)
        assert await first.wait_for_status(mine, {"expired"}) == "expired"
        report = await reaper_pass(first.services).run(sweep=True)
        assert report.errors == []
        assert objects_of(sim, mine) == {}
        assert len(objects_of(sim, theirs)) == 3
        assert await reads_its_pod(second, sim, theirs) == 200
        revoked = await second.revoke(theirs)
        assert revoked.json()["status"] == "revoked"
        assert objects_of(sim, theirs) == {}
