"""The chart's RBAC is enough for scangate's whole job, for every scanner profile.

The chart is installed by real Helm into kubesim (over TLS, so issued kubeconfigs work with the
real kubectl); scangate then runs with a token minted for the chart's own ServiceAccount as its
only cluster credential. kubesim enforces RBAC escalation prevention, so a permission the chart
forgot fails these tests instead of failing in a customer's cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.auth import generate_api_key
from app.db.engine import run_migrations
from kubesim.pytest_plugin import KubesimHandle
from tests.support.chart import InstallScangateChart
from tests.support.cluster_view import cluster_objects, expected_objects, token_of, token_status
from tests.support.kubectl import kubectl
from tests.support.scangate import Deployment, scangate_config

# A revoked or expired grant's token is *denied*: 401 once its ServiceAccount is gone and the
# apiserver's token cache (10 s) has let go of it, 403 while a cached authentication meets the
# deleted RoleBinding. A real cluster gives either; a test must not assume which.
DENIED = (401, 403)

pytestmark = pytest.mark.anyio

PROFILES = ("exec", "debug", "sidecar")
# What each profile's kubeconfig may do on a granted pod, beyond `get pods`
# (README "Scanner profiles").
PROFILE_ABILITIES: dict[str, list[tuple[str, str]]] = {
    "exec": [("create", "exec"), ("get", "log")],
    "debug": [("create", "exec"), ("create", "attach"), ("patch", "ephemeralcontainers")],
    "sidecar": [("get", "log")],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def chart_deployment(
    install_scangate_chart: InstallScangateChart,
    kubesim_tls: KubesimHandle,
    sqlite_url: str,
    tmp_path: Path,
) -> Deployment:
    installed = install_scangate_chart(
        {"scanners": list(PROFILES), "targetNamespaces": ["payments"]}, cluster=kubesim_tls
    )
    # The flow runs under the chart's admission policy on scangate's own identity.
    assert installed.release.of_kind("ValidatingAdmissionPolicyBinding"), "policy not rendered"
    run_migrations(sqlite_url)
    api_keys = {name: generate_api_key()[0] for name in ("alice", "bob", "carol", "root")}
    document = scangate_config(
        kubeconfig=str(installed.kubeconfig), database_url=sqlite_url, api_keys=api_keys
    )
    document["clusters"] = [installed.cluster_config()]
    return Deployment(tmp_path, api_keys, document)


async def test_scangate_runs_a_full_grant_flow_per_profile_as_the_charts_service_account(
    chart_deployment: Deployment, kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    async with chart_deployment.running() as scangate:
        ready = await scangate.http.get("/readyz")
        assert ready.status_code == 200, ready.text
        for scanner in PROFILES:
            grant = await scangate.grant(scanner=scanner, pods=["web-0", "web-1"])
            assert cluster_objects(kubesim_tls, grant["id"]) == expected_objects(grant["id"])

            fetched = await scangate.kubeconfig(grant["id"])
            assert fetched.status_code == 200, fetched.text
            path = tmp_path / f"{scanner}.kubeconfig"
            path.write_text(fetched.text)
            assert kubectl(path, "-n", "payments", "get", "pod", "web-1", "-o", "name").stdout == (
                "pod/web-1\n"
            )
            for verb, subresource in PROFILE_ABILITIES[scanner]:
                answer = kubectl(
                    path, "-n", "payments", "auth", "can-i", verb, "pods/web-0",
                    f"--subresource={subresource}",
                )  # fmt: skip
                assert answer.stdout.strip() == "yes", (scanner, verb, subresource)
            denied = kubectl(path, "-n", "payments", "auth", "can-i", "get", "pods/db-0")
            assert denied.stdout.strip() == "no"

            revoked = await scangate.revoke(grant["id"])
            assert revoked.json()["status"] == "revoked"
            assert token_status(kubesim_tls, token_of(fetched.text)) in DENIED
            assert cluster_objects(kubesim_tls, grant["id"]) == set()


async def test_a_namespace_the_chart_does_not_target_is_refused_by_the_cluster_not_leaked(
    chart_deployment: Deployment, kubesim_tls: KubesimHandle
) -> None:
    # The test policy lets carol into orders, but the chart targets only payments: scangate
    # must answer 502 naming the permission it lacks, and leave nothing behind.
    async with chart_deployment.running() as scangate:
        response = await scangate.create(who="carol", namespace="orders", pods=["api-0"])
        assert response.status_code == 502, response.text
        body = response.json()
        assert body["status"] == 502
        assert "orders" in body["permission"]
        assert cluster_objects(kubesim_tls) == set()
