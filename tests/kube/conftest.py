"""Fixtures of the kube suite: ClusterClients pointed at kubesim over a real socket (the
helpers they use are in `tests.support.kube`).

Async tests run on asyncio through anyio's pytest plugin (`pytestmark = pytest.mark.anyio`).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.kube.clusters import ClusterClient
from kubesim.pytest_plugin import KubesimHandle
from tests.support.kube import LimitedCluster, cluster_client, kubeconfig_with_token


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def cluster(kubesim: KubesimHandle) -> AsyncIterator[ClusterClient]:
    """scangate's client for kubesim, as the admin kubeconfig's identity."""
    client = await cluster_client(Path(kubesim.admin_kubeconfig))
    yield client
    await client.aclose()


@pytest.fixture
async def tls_cluster(kubesim_tls: KubesimHandle) -> AsyncIterator[ClusterClient]:
    client = await cluster_client(Path(kubesim_tls.admin_kubeconfig))
    yield client
    await client.aclose()


@pytest.fixture
async def limited_cluster(kubesim: KubesimHandle, tmp_path: Path) -> AsyncIterator[LimitedCluster]:
    """Builds a ClusterClient for a user holding only the given rules per namespace."""
    built: list[ClusterClient] = []

    async def build(rules_by_namespace: dict[str, list[dict[str, Any]]]) -> ClusterClient:
        user = f"scangate-limited-{len(built)}"
        token = secrets.token_urlsafe(24)
        kubesim.add_user_token(token, user, ["scangate-operators"])
        manifests: list[dict[str, Any]] = []
        for namespace, rules in rules_by_namespace.items():
            meta = {"name": user, "namespace": namespace}
            manifests.append(
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": meta, "rules": rules}
            )  # fmt: skip
            manifests.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": meta,
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": user,
                    },
                    "subjects": [
                        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                    ],
                }
            )
        kubesim.apply(manifests)
        config = kubeconfig_with_token(
            Path(kubesim.admin_kubeconfig), token, tmp_path / f"{user}.kubeconfig"
        )
        client = await cluster_client(config)
        built.append(client)
        return client

    yield build
    for client in built:
        await client.aclose()
