"""Fixtures of the chart suite: real Helm against kubesim, and the chart's own identity.

`install_scangate_chart` is the one to reuse (e.g. for a full grant flow run by the service as
the chart's identity): it installs the chart into the test's kubesim and returns an
`InstalledChart` whose `kubeconfig` authenticates as the chart's ServiceAccount with a token
minted by TokenRequest, exactly what the pod would get in a real cluster, and whose
`cluster_config()` is a ready `clusters:` entry for scangate.yaml. The types and helpers
(`InstalledChart`, `InstallScangateChart`, ...) are in `tests.support.chart`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from kubesim.pytest_plugin import DEFAULT_SEED, KubesimHandle
from tests.chart.helm_runner import IMAGE_VALUES, install_chart, merge_values
from tests.support.chart import (
    KUBESIM_BASE_VALUES,
    RELEASE,
    RELEASE_NAMESPACE,
    SEED_WITHOUT_GRANTS_NAMESPACE,
    InstalledChart,
    InstallScangateChart,
    ensure_namespace,
    mint_service_account_token,
)
from tests.support.scangate import GRANTS_NAMESPACE


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
