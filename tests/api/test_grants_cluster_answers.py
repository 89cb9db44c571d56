"""Answers from the cluster that scangate's Kubernetes client cannot decode: a 502 naming the
object and the field, never a 500 (issue 16: a pod whose container status lacks `image`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes.client as k8s
import pytest

from kubesim.pytest_plugin import KubesimHandle
from tests.kube.undecodable_pods import UndecodablePodsProxy

pytestmark = pytest.mark.anyio


async def test_a_pod_the_client_cannot_decode_is_a_502_naming_the_pod_and_the_field(
    deployment: Any, sim: KubesimHandle, tmp_path: Path
) -> None:
    async with UndecodablePodsProxy(sim.url, sim.ca_cert_pem) as proxy:
        config = proxy.kubeconfig(Path(sim.admin_kubeconfig), tmp_path / "spoiled.kubeconfig")
        deployment.reconfigure(
            clusters=[dict(c, kubeconfig=str(config)) for c in deployment.document["clusters"]]
        )
        async with deployment.running(start_reaper=False) as scangate:
            response = await scangate.create(pods=["web-0"])
            listed = await scangate.request("GET", "/v1/grants")
    assert proxy.spoiled >= 1

    assert response.status_code == 502, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 502
    assert 'pods "web-0" in namespace "payments"' in problem["detail"]
    assert "image (V1ContainerStatus)" in problem["detail"]

    # The grant failed cleanly: recorded as failed, and its ServiceAccount (created beside the
    # pod lookup) deleted again.
    [grant] = listed.json()["items"]
    assert grant["status"] == "failed"
    assert "image (V1ContainerStatus)" in grant["last_error"]
    accounts = k8s.CoreV1Api(sim.admin_client()).list_namespaced_service_account(
        "scangate-grants", label_selector="app.kubernetes.io/managed-by=scangate"
    )
    assert accounts.items == []
