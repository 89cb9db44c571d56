"""The Helm chart installed into kubesim: what an install returns (`InstalledChart`), the
values installs start from, and the cluster steps an install needs (the chart suite's
`install_scangate_chart` fixture does the install)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from kubesim.pytest_plugin import DEFAULT_SEED, KubesimHandle
from tests.chart.helm_runner import Release

RELEASE = "scangate"
RELEASE_NAMESPACE = "scangate"

# kubesim's default seed already has the grants namespace and the `payments` and `orders`
# namespaces, so installs into it use the existing grants namespace.
KUBESIM_BASE_VALUES: dict[str, Any] = {
    "grantsNamespace": {"create": False},
    "targetNamespaces": ["payments"],
}


_SEEDED_GRANTS_NAMESPACE = (
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: scangate-grants}\n---\n"
)
# The default seed without the grants namespace, for installs that create it (the default).
SEED_WITHOUT_GRANTS_NAMESPACE = DEFAULT_SEED.replace(_SEEDED_GRANTS_NAMESPACE, "")


@dataclass
class InstalledChart:
    """A release of the chart in a kubesim, and credentials for the chart's ServiceAccount."""

    release: Release
    values: dict[str, Any]
    namespace: str
    service_account: str
    grants_namespace: str
    cluster: KubesimHandle = field(repr=False)
    token: str = field(repr=False)
    # For API clients and for scangate itself (`cluster_config()`).
    kubeconfig: Path
    # For the real kubectl, which sends no bearer token over plain HTTP: on an HTTP kubesim
    # the token also rides in the server URL, so this file must never reach scangate (it
    # copies the server URL into the kubeconfigs it issues).
    kubectl_kubeconfig: Path

    def kubeconfig_for_token(self, token: str, path: Path, *, for_kubectl: bool = False) -> Path:
        """A kubeconfig for the same cluster that authenticates with another token."""
        return self.cluster.token_kubeconfig(token, path, for_kubectl=for_kubectl)

    def cluster_config(self, name: str = "default") -> dict[str, Any]:
        """A scangate.yaml `clusters:` entry that acts as the chart's ServiceAccount."""
        return {
            "name": name,
            "kubeconfig": str(self.kubeconfig),
            "grants_namespace": self.grants_namespace,
        }


def ensure_namespace(kubesim: KubesimHandle, name: str) -> None:
    core = k8s.CoreV1Api(kubesim.admin_client())
    try:
        core.read_namespace(name)
    except k8s.ApiException as exc:
        if exc.status != 404:
            raise
        kubesim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def mint_service_account_token(
    kubesim: KubesimHandle, namespace: str, name: str, seconds: int = 3600
) -> str:
    """A TokenRequest for `namespace/name`, made as the cluster admin (as the kubelet would)."""
    core = k8s.CoreV1Api(kubesim.admin_client())
    # A plain manifest (the client sends dicts as they are): its model would demand audiences.
    body: Any = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": seconds},
    }
    response = core.create_namespaced_service_account_token(name, namespace, body)
    assert response.status is not None
    assert response.status.token
    return response.status.token


InstallScangateChart = Callable[..., InstalledChart]
