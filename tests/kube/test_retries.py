"""Bounded retries against kubesim's injected faults, and a cluster that is down."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from app.kube.clusters import ClusterClient, RetryPolicy
from app.kube.errors import KubeUnavailable
from tests.kube.conftest import GRANTS_NAMESPACE, cluster_client, grant_target

pytestmark = pytest.mark.anyio


def managed_service_accounts(kubesim: Any) -> list[str]:
    core = client.CoreV1Api(kubesim.admin_client())
    items: list[Any] = core.list_namespaced_service_account(
        GRANTS_NAMESPACE, label_selector="app.kubernetes.io/managed-by=scangate"
    ).items
    return [sa.metadata.name for sa in items]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_transient_server_errors_are_retried(
    cluster: ClusterClient, kubesim: Any, status: int
) -> None:
    kubesim.inject_fault(status=status, methods=["POST"], resources=["serviceaccounts"], count=2)
    target = grant_target()
    await cluster.create_service_account(target)
    assert managed_service_accounts(kubesim) == [f"scangate-{target.grant_id}"]


async def test_throttling_honours_retry_after(cluster: ClusterClient, kubesim: Any) -> None:
    kubesim.inject_fault(status=429, methods=["GET"], resources=["pods"], count=1, retry_after=1)
    started = time.monotonic()
    pods = await cluster.get_pods("payments", ["web-0"])
    assert [p.name for p in pods] == ["web-0"]
    assert time.monotonic() - started >= 0.95


async def test_dropped_connections_are_retried_without_duplicates(
    cluster: ClusterClient, kubesim: Any
) -> None:
    kubesim.inject_fault(
        status=None, drop_connection=True, methods=["POST"], resources=["serviceaccounts"], count=1
    )
    target = grant_target()
    await cluster.create_service_account(target)
    assert managed_service_accounts(kubesim) == [f"scangate-{target.grant_id}"]


async def test_dropped_connection_on_token_request_is_retried(
    cluster: ClusterClient, kubesim: Any
) -> None:
    target = grant_target()
    await cluster.create_service_account(target)
    kubesim.inject_fault(status=None, drop_connection=True, methods=["POST"], count=1)
    issued = await cluster.request_token(target.grant_id, 600)
    assert issued.token


async def test_persistent_failure_gives_up_after_bounded_tries(kubesim: Any) -> None:
    policy = RetryPolicy(tries=4, base_delay=0.02, max_delay=0.1)
    cluster = cluster_client(Path(kubesim.admin_kubeconfig), retry=policy)
    try:
        kubesim.inject_fault(status=503, methods=["GET"], resources=["namespaces"])
        started = time.monotonic()
        with pytest.raises(KubeUnavailable, match="503"):
            await cluster.namespace_exists("payments")
        assert time.monotonic() - started < 3
    finally:
        cluster.close()


async def test_long_retry_after_is_passed_on_instead_of_waited_for(
    cluster: ClusterClient, kubesim: Any
) -> None:
    kubesim.inject_fault(status=503, methods=["GET"], resources=["namespaces"], retry_after=60)
    started = time.monotonic()
    with pytest.raises(KubeUnavailable) as raised:
        await cluster.namespace_exists("payments")
    assert raised.value.retry_after == 60
    assert time.monotonic() - started < 2


async def test_cluster_down_is_unavailable(kubesim_factory: Any) -> None:
    handle = kubesim_factory()
    cluster = cluster_client(Path(handle.admin_kubeconfig))
    try:
        await cluster.ping()
        handle.stop()
        with pytest.raises(KubeUnavailable, match="cannot reach"):
            await cluster.ping()
        with pytest.raises(KubeUnavailable):
            await cluster.create_service_account(grant_target())
        handle.start()
        await cluster.ping()  # reconnects once the API server is back
    finally:
        cluster.close()


async def test_unavailable_error_never_carries_the_token(kubesim_factory: Any) -> None:
    handle = kubesim_factory()
    cluster = cluster_client(Path(handle.admin_kubeconfig))
    try:
        handle.stop()
        with pytest.raises(KubeUnavailable) as raised:
            await cluster.namespace_exists("payments")
        assert handle.admin_token not in str(raised.value)
        assert raised.value.__suppress_context__  # tracebacks stop at our error
    finally:
        cluster.close()
