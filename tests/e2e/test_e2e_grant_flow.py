"""The grant flow on a real cluster, with the same assertions as the kubesim suite: the issued
kubeconfig can do exactly its profile's verbs on the granted pod (checked with kubectl), a scan
command runs through it, and revocation and expiry end access."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from tests.support.e2e import E2ECluster
from tests.support.kubectl import kubectl
from tests.support.scangate import Deployment

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _objects(cluster: E2ECluster, grant_id: str) -> set[tuple[str, str]]:
    selector = f"scangate.dev/grant={grant_id}"
    core, rbac = k8s.CoreV1Api(cluster.api), k8s.RbacAuthorizationV1Api(cluster.api)
    found = {
        ("ServiceAccount", sa.metadata.namespace)
        for sa in core.list_namespaced_service_account(
            cluster.grants_namespace, label_selector=selector
        ).items
    }
    found |= {
        ("Role", r.metadata.namespace)
        for r in rbac.list_namespaced_role(cluster.namespace, label_selector=selector).items
    }
    found |= {
        ("RoleBinding", b.metadata.namespace)
        for b in rbac.list_namespaced_role_binding(cluster.namespace, label_selector=selector).items
    }
    return found


def _can(path: Path, namespace: str, *args: str) -> str:
    return kubectl(path, "-n", namespace, "auth", "can-i", *args).stdout.strip()


async def test_exec_grant_on_a_real_cluster(
    e2e_deployment: Deployment, e2e_cluster: E2ECluster, tmp_path: Path
) -> None:
    ns = e2e_cluster.namespace
    async with e2e_deployment.running() as scangate:
        grant = await scangate.grant(namespace=ns, pods=["web-0"], scanner="exec")
        assert _objects(e2e_cluster, grant["id"]) == {
            ("ServiceAccount", e2e_cluster.grants_namespace),
            ("Role", ns),
            ("RoleBinding", ns),
        }
        fetched = await scangate.kubeconfig(grant["id"])
        assert fetched.status_code == 200, fetched.text
        path = tmp_path / "grant.kubeconfig"
        path.write_text(fetched.text)

        assert _can(path, ns, "create", "pods/web-0", "--subresource=exec") == "yes"
        assert _can(path, ns, "get", "pods/web-0", "--subresource=log") == "yes"
        assert _can(path, ns, "create", "pods/web-1", "--subresource=exec") == "no"
        assert _can(path, ns, "list", "pods") == "no"
        assert _can(path, ns, "create", "pods") == "no"
        assert _can(path, ns, "get", "secrets") == "no"
        assert _can(path, "default", "get", "pods/web-0") == "no"

        scan = kubectl(path, "-n", ns, "exec", "web-0", "-c", "app", "--", "cat", "/etc/passwd")
        assert scan.returncode == 0, scan.stderr
        assert scan.stdout.startswith("root:")
        refused = kubectl(path, "-n", ns, "exec", "web-1", "--", "true")
        assert refused.returncode != 0
        assert "forbidden" in refused.stderr.lower()

        revoked = await scangate.revoke(grant["id"])
        assert revoked.json()["status"] == "revoked"
        assert _objects(e2e_cluster, grant["id"]) == set()
        after = kubectl(path, "-n", ns, "get", "pod", "web-0")
        assert after.returncode != 0
        # Denied: 403 while the apiserver's token cache vouches for the token, 401 after.
        assert "(Forbidden)" in after.stderr or "(Unauthorized)" in after.stderr


async def test_selector_grant_resolves_running_pods_and_expiry_ends_access(
    e2e_deployment: Deployment, e2e_cluster: E2ECluster, tmp_path: Path
) -> None:
    ns = e2e_cluster.namespace
    async with e2e_deployment.running() as scangate:
        grant: dict[str, Any] = await scangate.grant(
            namespace=ns, selector="app=e2e-web", scanner="sidecar"
        )
        assert sorted(grant["pods"]) == ["web-0", "web-1"]
        text = (await scangate.kubeconfig(grant["id"])).text
        path = tmp_path / "sidecar.kubeconfig"
        path.write_text(text)
        logs = kubectl(path, "-n", ns, "logs", "web-1", "-c", "scanner")
        assert logs.returncode == 0, logs.stderr
        assert _can(path, ns, "create", "pods/web-1", "--subresource=exec") == "no"

        await scangate.expire_soon(grant["id"])
        assert await scangate.wait_for_status(grant["id"], {"expired"}, within=10) == "expired"
        assert _objects(e2e_cluster, grant["id"]) == set()
        denied = kubectl(path, "-n", ns, "get", "pod", "web-0")
        assert denied.returncode != 0
        assert "(Forbidden)" in denied.stderr or "(Unauthorized)" in denied.stderr
