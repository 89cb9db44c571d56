"""Creating and deleting a grant's objects in kubesim, read back with the official client."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from app.kube.clusters import ClusterClient
from app.kube.errors import KubeConflict, KubeInvalid, KubeNotFound
from app.kube.naming import GRANT_LABEL, MANAGED_BY_LABEL
from app.kube.profiles import profile_rules
from kubesim.pytest_plugin import KubesimHandle
from tests.support.kube import grant_target
from tests.support.scangate import GRANTS_NAMESPACE

pytestmark = pytest.mark.anyio


def read_all(kubesim: KubesimHandle, name: str, namespace: str) -> dict[str, Any]:
    """The grant's objects as the admin sees them; a missing object is None."""
    api = kubesim.admin_client()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    found: dict[str, Any] = {}
    for kind, read, ns in (
        ("sa", core.read_namespaced_service_account, GRANTS_NAMESPACE),
        ("role", rbac.read_namespaced_role, namespace),
        ("binding", rbac.read_namespaced_role_binding, namespace),
    ):
        try:
            found[kind] = read(name, ns)
        except ApiException as exc:
            if exc.status != 404:
                raise
            found[kind] = None
    return found


async def provision(cluster: ClusterClient, scanner: str = "exec") -> Any:
    target = grant_target(scanner=scanner)
    await cluster.create_service_account(target)
    await cluster.create_role(target, profile_rules(scanner, ["web-0", "web-1"]))
    await cluster.create_role_binding(target)
    return target


async def test_grant_objects_carry_names_labels_and_annotations(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    target = await provision(cluster)
    name = f"scangate-{target.grant_id}"
    objects = read_all(kubesim, name, "payments")
    expires = target.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for obj in objects.values():
        assert obj.metadata.name == name
        assert obj.metadata.labels[MANAGED_BY_LABEL] == "scangate"
        assert obj.metadata.labels[GRANT_LABEL] == target.grant_id
        assert obj.metadata.annotations["scangate.dev/requester"] == "apikey:ci-payments"
        assert obj.metadata.annotations["scangate.dev/expires-at"] == expires
        assert obj.metadata.annotations["scangate.dev/scanner"] == "exec"
    sa = objects["sa"]
    assert sa.metadata.namespace == GRANTS_NAMESPACE
    assert sa.metadata.annotations["scangate.dev/target-namespace"] == "payments"
    assert sa.automount_service_account_token is False


async def test_role_holds_the_profile_rules_restricted_to_the_pods(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    target = await provision(cluster, scanner="debug")
    role = read_all(kubesim, f"scangate-{target.grant_id}", "payments")["role"]
    rules = [
        {
            "apiGroups": r.api_groups,
            "resources": r.resources,
            "verbs": r.verbs,
            "resourceNames": r.resource_names,
        }
        for r in role.rules
    ]
    assert rules == profile_rules("debug", ["web-0", "web-1"])


async def test_role_binding_binds_the_role_to_the_sa_in_the_grants_namespace(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    target = await provision(cluster)
    name = f"scangate-{target.grant_id}"
    binding = read_all(kubesim, name, "payments")["binding"]
    assert binding.metadata.namespace == "payments"
    assert (binding.role_ref.kind, binding.role_ref.name) == ("Role", name)
    assert binding.role_ref.api_group == "rbac.authorization.k8s.io"
    [subject] = binding.subjects
    assert (subject.kind, subject.name, subject.namespace) == (
        "ServiceAccount",
        name,
        GRANTS_NAMESPACE,
    )


async def test_delete_grant_objects_removes_all_three_and_is_idempotent(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    target = await provision(cluster)
    name = f"scangate-{target.grant_id}"
    await cluster.delete_grant_objects(target.grant_id, "payments")
    assert read_all(kubesim, name, "payments") == {"sa": None, "role": None, "binding": None}
    await cluster.delete_grant_objects(target.grant_id, "payments")  # 404s count as deleted


async def test_delete_after_a_partial_create_removes_what_exists(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    target = grant_target()
    await cluster.create_service_account(target)
    await cluster.delete_grant_objects(target.grant_id, "payments")
    name = f"scangate-{target.grant_id}"
    assert read_all(kubesim, name, "payments") == {"sa": None, "role": None, "binding": None}


async def test_creating_an_existing_object_without_a_retry_is_a_conflict(
    cluster: ClusterClient,
) -> None:
    target = grant_target()
    await cluster.create_service_account(target)
    with pytest.raises(KubeConflict):
        await cluster.create_service_account(target)


async def test_role_in_a_missing_namespace_is_not_found(cluster: ClusterClient) -> None:
    target = grant_target(namespace="nope")
    with pytest.raises(KubeNotFound, match="nope"):
        await cluster.create_role(target, profile_rules("exec", ["web-0"]))


async def test_objects_the_api_server_rejects_are_kube_invalid(cluster: ClusterClient) -> None:
    target = dataclasses.replace(grant_target(), grant_id="Not_A_DNS_Name")
    with pytest.raises(KubeInvalid, match="scangate-Not_A_DNS_Name"):
        await cluster.create_service_account(target)


async def test_pods_are_read_by_name_and_missing_names_are_absent(cluster: ClusterClient) -> None:
    pods = await cluster.get_pods("payments", ["web-0", "ghost", "web-2"])
    assert [p.name for p in pods] == ["web-0", "web-2"]
    web0, web2 = pods
    assert web0.phase == "Running"
    assert web0.labels["app"] == "web"
    assert set(web0.containers) == {"app", "scanner"}
    assert web2.phase == "Pending"
    assert await cluster.get_pods("nope", ["web-0"]) == []


async def test_pods_are_listed_by_label_selector(cluster: ClusterClient) -> None:
    pods = await cluster.list_pods("payments", "app=web")
    assert sorted(p.name for p in pods) == ["web-0", "web-1", "web-2"]
    db = await cluster.list_pods("payments", "app=db")
    assert [(p.name, p.containers) for p in db] == [("db-0", ("postgres",))]
    assert await cluster.list_pods("payments", "app=none") == []


async def test_namespace_exists(cluster: ClusterClient) -> None:
    assert await cluster.namespace_exists("payments")
    assert not await cluster.namespace_exists("nope")


async def test_ping_succeeds_against_a_healthy_cluster(cluster: ClusterClient) -> None:
    await cluster.ping()


async def test_token_request_returns_the_servers_expiry(cluster: ClusterClient) -> None:
    target = await provision(cluster)
    before = datetime.now(UTC)
    issued = await cluster.request_token(target.grant_id, 600)
    assert issued.token
    assert issued.token not in repr(issued)
    assert issued.expires_at.tzinfo is not None
    assert before + timedelta(seconds=590) <= issued.expires_at
    assert issued.expires_at <= datetime.now(UTC) + timedelta(seconds=610)


async def test_each_token_request_mints_a_new_token(cluster: ClusterClient) -> None:
    target = await provision(cluster)
    first = await cluster.request_token(target.grant_id, 900)
    second = await cluster.request_token(target.grant_id, 900)
    assert first.token != second.token


async def test_token_below_the_kubernetes_minimum_is_refused_locally(
    cluster: ClusterClient,
) -> None:
    with pytest.raises(ValueError, match="600"):
        await cluster.request_token(grant_target().grant_id, 599)


async def test_token_for_a_deleted_grant_is_not_found(cluster: ClusterClient) -> None:
    target = await provision(cluster)
    await cluster.delete_grant_objects(target.grant_id, "payments")
    with pytest.raises(KubeNotFound):
        await cluster.request_token(target.grant_id, 600)
