"""scangate's own identity lacking a permission: KubeForbidden naming that permission.

The limited identities hold only what the test gives them (a static user token bound to Roles),
so kubesim's RBAC, escalation prevention included, decides as a real API server would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.kube.errors import KubeForbidden, KubeNotFound
from app.kube.profiles import profile_rules
from kubesim.pytest_plugin import KubesimHandle
from tests.support.kube import (
    GRANTS_NAMESPACE_RULES,
    TARGET_NAMESPACE_RULES,
    LimitedCluster,
    cluster_client,
    grant_target,
    kubeconfig_with_token,
)
from tests.support.scangate import GRANTS_NAMESPACE

pytestmark = pytest.mark.anyio

RBAC_WRITE = [
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": ["get", "list", "create", "delete"],
    }
]


async def test_missing_create_roles_is_named(limited_cluster: LimitedCluster) -> None:
    cluster = await limited_cluster({"payments": [TARGET_NAMESPACE_RULES[0]]})
    with pytest.raises(KubeForbidden) as raised:
        await cluster.create_role(grant_target(), profile_rules("exec", ["web-0"]))
    assert (
        raised.value.permission == 'create roles.rbac.authorization.k8s.io in namespace "payments"'
    )
    assert raised.value.permission in str(raised.value)


async def test_missing_service_account_rights_in_the_grants_namespace_are_named(
    limited_cluster: LimitedCluster,
) -> None:
    cluster = await limited_cluster({"payments": TARGET_NAMESPACE_RULES})
    with pytest.raises(KubeForbidden) as raised:
        await cluster.create_service_account(grant_target())
    assert raised.value.permission == f'create serviceaccounts in namespace "{GRANTS_NAMESPACE}"'


async def test_escalation_prevention_names_the_profile_permissions_not_held(
    limited_cluster: LimitedCluster,
) -> None:
    # May write Roles, but holds no pod permissions: RBAC refuses to let it grant them.
    cluster = await limited_cluster({"payments": RBAC_WRITE})
    with pytest.raises(KubeForbidden) as raised:
        await cluster.create_role(grant_target(), profile_rules("exec", ["web-0"]))
    permission = raised.value.permission
    assert "pods/exec" in permission
    assert "RBAC escalation prevention" in permission
    assert 'in namespace "payments"' in permission


async def test_role_binding_before_its_role_is_refused_without_bind(
    limited_cluster: LimitedCluster,
) -> None:
    # Without `bind`, the API server must resolve the Role to check escalation; a missing Role
    # is answered with the Role's NotFound, as kube-apiserver does.
    cluster = await limited_cluster(
        {"payments": TARGET_NAMESPACE_RULES, GRANTS_NAMESPACE: GRANTS_NAMESPACE_RULES}
    )
    target = grant_target()
    with pytest.raises(KubeNotFound) as raised:
        await cluster.create_role_binding(target)
    assert f'roles.rbac.authorization.k8s.io "scangate-{target.grant_id}" not found' in str(
        raised.value
    )


async def test_chart_permissions_are_enough_for_the_whole_grant(
    limited_cluster: LimitedCluster,
) -> None:
    cluster = await limited_cluster(
        {"payments": TARGET_NAMESPACE_RULES, GRANTS_NAMESPACE: GRANTS_NAMESPACE_RULES}
    )
    for scanner in ("exec", "debug", "sidecar"):
        target = grant_target(scanner=scanner)
        await cluster.create_service_account(target)
        await cluster.create_role(target, profile_rules(scanner, ["web-0", "web-1"]))
        await cluster.create_role_binding(target)
        assert (await cluster.request_token(target.grant_id, 600)).token
        await cluster.delete_grant_objects(target.grant_id, "payments")


async def test_ping_with_rejected_credentials_is_forbidden(
    kubesim: KubesimHandle, tmp_path: Path
) -> None:
    config = kubeconfig_with_token(Path(kubesim.admin_kubeconfig), "not-a-token", tmp_path / "k")
    cluster = await cluster_client(config)
    try:
        with pytest.raises(KubeForbidden, match="credentials") as raised:
            await cluster.ping()
        assert "not-a-token" not in str(raised.value)
    finally:
        await cluster.aclose()
