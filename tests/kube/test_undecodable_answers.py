"""An answer the client's models refuse is a KubeMalformedResponse naming the object and the
field, not a ValueError from deep inside the client (issue: a pod whose container status lacks
`image` made grant requests fail with 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.kube.clusters import ClusterClient
from app.kube.errors import KubeMalformedResponse
from kubesim.pytest_plugin import KubesimHandle
from tests.kube.undecodable_pods import UndecodablePodsProxy
from tests.support.kube import cluster_client

pytestmark = pytest.mark.anyio


@pytest.fixture
async def spoiled(
    kubesim: KubesimHandle, tmp_path: Path
) -> AsyncIterator[tuple[ClusterClient, Any]]:
    """scangate's client for kubesim, through a proxy that spoils every Pod answer."""
    async with UndecodablePodsProxy(kubesim.url) as proxy:
        config = proxy.kubeconfig(Path(kubesim.admin_kubeconfig), tmp_path / "spoiled")
        cluster = await cluster_client(config)
        try:
            yield cluster, proxy
        finally:
            await cluster.aclose()


async def test_a_pod_the_models_refuse_is_malformed_naming_the_pod_and_the_field(
    spoiled: tuple[ClusterClient, Any], kubesim: KubesimHandle
) -> None:
    cluster, proxy = spoiled
    with pytest.raises(KubeMalformedResponse) as raised:
        await cluster.get_pods("payments", ["web-0"])
    message = str(raised.value)
    assert 'get pods "web-0" in namespace "payments"' in message
    assert raised.value.field == "image (V1ContainerStatus)"
    assert "image (V1ContainerStatus)" in message
    # Decoding fails the same way on every try: asked once, not retried.
    assert [r["status"] for r in kubesim.requests() if r["resource"] == "pods"] == [200]
    assert proxy.spoiled == 1


async def test_a_pod_list_the_models_refuse_is_malformed(
    spoiled: tuple[ClusterClient, Any],
) -> None:
    cluster, _ = spoiled
    with pytest.raises(KubeMalformedResponse, match=r"list pods in namespace \"payments\""):
        await cluster.list_pods("payments", "app=web")


async def test_other_answers_through_the_same_proxy_still_decode(
    spoiled: tuple[ClusterClient, Any],
) -> None:
    cluster, _ = spoiled
    assert await cluster.namespace_exists("payments")
    await cluster.ping()
