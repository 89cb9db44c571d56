"""Fixtures of the chart suite: real Helm against kubesim, and the chart's own identity.

`install_scangate_chart` is the one to reuse (e.g. for a full grant flow run by the service as
the chart's identity): it installs the chart into the test's kubesim and returns an
`InstalledChart` whose `kubeconfig` authenticates as the chart's ServiceAccount with a token
minted by TokenRequest, exactly what the pod would get in a real cluster, and whose
`cluster_config()` is a ready `clusters:` entry for scangate.yaml.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from kubesim.pytest_plugin import DEFAULT_SEED, KubesimHandle
from tests.chart.helm_runner import IMAGE_VALUES, Release, install_chart, merge_values

RELEASE = "scangate"
RELEASE_NAMESPACE = "scangate"
GRANTS_NAMESPACE = "scangate-grants"

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


@pytest.fixture(scope="session")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Private HELM_CACHE/CONFIG/DATA homes for the session's Helm child processes."""
    return tmp_path_factory.mktemp("helm-home")


@pytest.fixture
def fresh_cluster(kubesim_factory: Callable[..., KubesimHandle]) -> KubesimHandle:
    """A dedicated kubesim like the default one but without the grants namespace, so that the
    chart can create it (`grantsNamespace.create`, the default)."""
    assert SEED_WITHOUT_GRANTS_NAMESPACE != DEFAULT_SEED
    return kubesim_factory(seed=SEED_WITHOUT_GRANTS_NAMESPACE)


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
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": seconds},
    }
    response = core.create_namespaced_service_account_token(name, namespace, body)
    token: str = response.status.token
    return token


InstallScangateChart = Callable[..., InstalledChart]


@pytest.fixture
def install_scangate_chart(
    kubesim: KubesimHandle, helm_home: Path, tmp_path: Path
) -> InstallScangateChart:
    """Install the chart into this test's kubesim; see the module docstring.

    `values` are coalesced over KUBESIM_BASE_VALUES (pass `base=None` to start from the chart's
    defaults alone) and a test image (`IMAGE_VALUES`: the chart has no default image; pass
    `{"image": {"repository": ""}}` to install without one). The release namespace is created
    first if missing.
    """

    def install(
        values: Mapping[str, Any] | None = None,
        *,
        base: Mapping[str, Any] | None = KUBESIM_BASE_VALUES,
        release: str = RELEASE,
        namespace: str = RELEASE_NAMESPACE,
        cluster: KubesimHandle | None = None,
        skip_schema_validation: bool = False,
    ) -> InstalledChart:
        target = cluster or kubesim
        effective = merge_values(merge_values(IMAGE_VALUES, base or {}), values or {})
        ensure_namespace(target, namespace)
        # Helm is Go (client-go), which, like kubectl, sends no bearer token over plain HTTP.
        helm_kubeconfig = target.token_kubeconfig(
            target.admin_token, tmp_path / "helm-admin.kubeconfig", for_kubectl=True
        )
        rendered = install_chart(
            helm_home,
            kubeconfig=helm_kubeconfig,
            values=effective,
            release=release,
            namespace=namespace,
            skip_schema_validation=skip_schema_validation,
        )
        account = rendered.of_kind("ServiceAccount")[0]["metadata"]["name"]
        token = mint_service_account_token(target, namespace, account)
        kubeconfig = target.token_kubeconfig(token, tmp_path / f"{release}-sa.kubeconfig")
        kubectl_kubeconfig = target.token_kubeconfig(
            token, tmp_path / f"{release}-sa.kubectl.kubeconfig", for_kubectl=True
        )
        grants = effective.get("grantsNamespace", {}).get("name", GRANTS_NAMESPACE)
        return InstalledChart(
            release=rendered,
            values=effective,
            namespace=namespace,
            service_account=account,
            grants_namespace=grants,
            cluster=target,
            token=token,
            kubeconfig=kubeconfig,
            kubectl_kubeconfig=kubectl_kubeconfig,
        )

    return install
