"""Listing and deleting scangate's objects for the reaper's orphan sweep."""

from __future__ import annotations

import pytest

from app.kube.clusters import ClusterClient
from app.kube.models import GrantTarget, ManagedObject
from app.kube.profiles import profile_rules
from kubesim.pytest_plugin import KubesimHandle
from tests.support.kube import (
    GRANTS_NAMESPACE_RULES,
    TARGET_NAMESPACE_RULES,
    LimitedCluster,
    grant_target,
)
from tests.support.scangate import GRANTS_NAMESPACE

pytestmark = pytest.mark.anyio


async def provision(cluster: ClusterClient, target: GrantTarget, pod: str) -> None:
    await cluster.create_service_account(target)
    await cluster.create_role(target, profile_rules(target.scanner, [pod]))
    await cluster.create_role_binding(target)


def expected(target: GrantTarget) -> set[ManagedObject]:
    name = f"scangate-{target.grant_id}"
    return {
        ManagedObject("ServiceAccount", GRANTS_NAMESPACE, name, target.grant_id),
        ManagedObject("Role", target.namespace, name, target.grant_id),
        ManagedObject("RoleBinding", target.namespace, name, target.grant_id),
    }


UNMANAGED = [
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "someone-else", "namespace": GRANTS_NAMESPACE},
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "someone-else", "namespace": "payments"},
        "rules": [],
    },
]


async def test_lists_every_managed_object_cluster_wide(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    kubesim.apply(UNMANAGED)
    payments = grant_target("payments")
    orders = grant_target("orders")
    await provision(cluster, payments, "web-0")
    await provision(cluster, orders, "api-0")
    found = await cluster.list_managed_objects()
    assert set(found) == expected(payments) | expected(orders)
    assert len(found) == 6


async def test_falls_back_to_per_namespace_lists_when_cluster_wide_is_forbidden(
    limited_cluster: LimitedCluster, cluster: ClusterClient
) -> None:
    limited = await limited_cluster(
        {
            "payments": TARGET_NAMESPACE_RULES,
            "orders": TARGET_NAMESPACE_RULES,
            GRANTS_NAMESPACE: GRANTS_NAMESPACE_RULES,
        }
    )
    payments = grant_target("payments")
    orders = grant_target("orders")
    await provision(limited, payments, "web-0")
    await provision(limited, orders, "api-0")
    # An orphan Role whose SA is gone: found only through the namespaces the caller names.
    orphan = grant_target("orders")
    await cluster.create_role(orphan, profile_rules("exec", ["api-0"]))
    await cluster.delete_managed_object(
        ManagedObject(
            "ServiceAccount", GRANTS_NAMESPACE, f"scangate-{orders.grant_id}", orders.grant_id
        )
    )

    found = set(await limited.list_managed_objects())
    orders_rbac = expected(orders) - {
        ManagedObject(
            "ServiceAccount", GRANTS_NAMESPACE, f"scangate-{orders.grant_id}", orders.grant_id
        )
    }
    assert found == expected(payments)  # orders is known to no SA annotation any more

    found = set(await limited.list_managed_objects(["orders"]))
    orphan_role = ManagedObject("Role", "orders", f"scangate-{orphan.grant_id}", orphan.grant_id)
    assert found == expected(payments) | orders_rbac | {orphan_role}


async def test_namespaces_out_of_reach_are_skipped(limited_cluster: LimitedCluster) -> None:
    limited = await limited_cluster(
        {"payments": TARGET_NAMESPACE_RULES, GRANTS_NAMESPACE: GRANTS_NAMESPACE_RULES}
    )
    target = grant_target("payments")
    await provision(limited, target, "web-0")
    found = set(await limited.list_managed_objects(["kube-system", "no-such-namespace"]))
    assert found == expected(target)


async def test_delete_managed_object_deletes_and_tolerates_missing(
    cluster: ClusterClient,
) -> None:
    target = grant_target()
    await provision(cluster, target, "web-0")
    for obj in expected(target):
        assert await cluster.delete_managed_object(obj) == "deleted"
        assert await cluster.delete_managed_object(obj) == "absent"  # 404 = already gone
    assert await cluster.list_managed_objects() == []


async def test_listed_objects_carry_their_installation(cluster: ClusterClient) -> None:
    target = grant_target()
    await provision(cluster, target, "web-0")
    found = await cluster.list_managed_objects()
    assert {obj.installation for obj in found} == {cluster.installation_id}
    assert cluster.installation_id == GRANTS_NAMESPACE  # the default: the grants namespace
    assert all(obj.uid and obj.resource_version for obj in found)


async def test_an_object_of_another_installation_by_the_grants_name_is_left_alone(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    target = grant_target()
    name = f"scangate-{target.grant_id}"
    labels = {
        "app.kubernetes.io/managed-by": "scangate",
        "scangate.dev/grant": target.grant_id,
        "scangate.dev/installation": "another-installation",
    }
    kubesim.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": "payments", "labels": labels},
                "rules": [],
            }
        ]
    )
    role = ManagedObject("Role", "payments", name, target.grant_id)
    assert await cluster.delete_managed_object(role) == "foreign"
    [left] = await cluster.list_managed_objects()
    assert (left.name, left.installation) == (name, "another-installation")


async def test_a_listed_object_replaced_since_the_listing_is_not_deleted(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    target = grant_target()
    await provision(cluster, target, "web-0")
    [listed] = [o for o in await cluster.list_managed_objects() if o.kind == "Role"]
    # Replaced under the same name between the listing and the delete (another writer).
    await cluster.delete_managed_object(
        ManagedObject("Role", "payments", listed.name, target.grant_id)
    )
    await cluster.create_role(target, profile_rules("exec", ["web-0"]))

    assert await cluster.delete_managed_object(listed) == "changed"  # uid precondition: 409
    [replacement] = [o for o in await cluster.list_managed_objects() if o.kind == "Role"]
    assert replacement.uid != listed.uid
    # Read afresh, it is judged ours and goes.
    assert (
        await cluster.delete_managed_object(
            ManagedObject("Role", "payments", listed.name, target.grant_id)
        )
        == "deleted"
    )
