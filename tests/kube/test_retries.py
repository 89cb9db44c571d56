"""Bounded retries against kubesim's injected faults, and a cluster that is down."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from app.kube.clusters import ClusterClient, RetryPolicy
from app.kube.errors import KubeConflict, KubeUnavailable
from kubesim.pytest_plugin import KubesimHandle
from tests.kube.kubeconfig_files import self_signed_ca_pem, write_kubeconfig
from tests.support.kube import cluster_client, grant_target
from tests.support.scangate import GRANTS_NAMESPACE

pytestmark = pytest.mark.anyio


def managed_service_accounts(kubesim: KubesimHandle) -> list[str]:
    core = client.CoreV1Api(kubesim.admin_client())
    items: list[Any] = core.list_namespaced_service_account(
        GRANTS_NAMESPACE, label_selector="app.kubernetes.io/managed-by=scangate"
    ).items
    return [sa.metadata.name for sa in items]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_transient_server_errors_are_retried(
    cluster: ClusterClient, kubesim: KubesimHandle, status: int
) -> None:
    kubesim.inject_fault(status=status, methods=["POST"], resources=["serviceaccounts"], count=2)
    target = grant_target()
    await cluster.create_service_account(target)
    assert managed_service_accounts(kubesim) == [f"scangate-{target.grant_id}"]


async def test_throttling_honours_retry_after(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    kubesim.inject_fault(status=429, methods=["GET"], resources=["pods"], count=1, retry_after=1)
    started = time.monotonic()
    pods = await cluster.get_pods("payments", ["web-0"])
    assert [p.name for p in pods] == ["web-0"]
    assert time.monotonic() - started >= 0.95


async def test_dropped_connections_are_retried_without_duplicates(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    kubesim.inject_fault(
        status=None, drop_connection=True, methods=["POST"], resources=["serviceaccounts"], count=1
    )
    target = grant_target()
    await cluster.create_service_account(target)
    assert managed_service_accounts(kubesim) == [f"scangate-{target.grant_id}"]


async def test_dropped_connection_on_token_request_is_retried(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    target = grant_target()
    await cluster.create_service_account(target)
    kubesim.inject_fault(status=None, drop_connection=True, methods=["POST"], count=1)
    issued = await cluster.request_token(target.grant_id, 600)
    assert issued.token


async def test_persistent_failure_gives_up_after_bounded_tries(kubesim: KubesimHandle) -> None:
    policy = RetryPolicy(tries=4, base_delay=0.02, max_delay=0.1)
    cluster = await cluster_client(Path(kubesim.admin_kubeconfig), retry=policy)
    try:
        kubesim.inject_fault(status=503, methods=["GET"], resources=["namespaces"])
        started = time.monotonic()
        with pytest.raises(KubeUnavailable, match="503"):
            await cluster.namespace_exists("payments")
        assert time.monotonic() - started < 3
    finally:
        await cluster.aclose()


async def test_long_retry_after_is_passed_on_instead_of_waited_for(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    kubesim.inject_fault(status=503, methods=["GET"], resources=["namespaces"], retry_after=60)
    started = time.monotonic()
    with pytest.raises(KubeUnavailable) as raised:
        await cluster.namespace_exists("payments")
    assert raised.value.retry_after == 60
    assert time.monotonic() - started < 2


async def test_cluster_down_is_unavailable(kubesim_factory: Callable[..., KubesimHandle]) -> None:
    handle = kubesim_factory()
    cluster = await cluster_client(Path(handle.admin_kubeconfig))
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
        await cluster.aclose()


async def test_unavailable_error_never_carries_the_token(
    kubesim_factory: Callable[..., KubesimHandle],
) -> None:
    handle = kubesim_factory()
    cluster = await cluster_client(Path(handle.admin_kubeconfig))
    try:
        handle.stop()
        with pytest.raises(KubeUnavailable) as raised:
            await cluster.namespace_exists("payments")
        assert handle.admin_token not in str(raised.value)
        # Tracebacks stop at our error: the urllib3 exception is not chained.
        assert raised.value.__cause__ is None
        assert raised.value.__context__ is None or raised.value.__suppress_context__
    finally:
        await cluster.aclose()


def api_requests(kubesim: KubesimHandle, method: str, resource: str) -> list[int]:
    """Statuses kubesim answered for matching API requests (0: connection dropped)."""
    return [
        r["status"]
        for r in kubesim.requests()
        if r["method"] == method and r["resource"] == resource
    ]


async def test_each_retry_is_a_real_request_and_success_stops_them(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    kubesim.inject_fault(status=503, methods=["POST"], resources=["serviceaccounts"], count=2)
    await cluster.create_service_account(grant_target())
    assert api_requests(kubesim, "POST", "serviceaccounts") == [503, 503, 201]


async def test_client_errors_are_answered_after_one_request(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    assert not await cluster.namespace_exists("nope")
    assert api_requests(kubesim, "GET", "namespaces") == [404]


async def test_retried_create_whose_first_try_landed_counts_as_created(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    # The first try's response is lost after the object was stored: modelled by storing the
    # object (with this grant's label) and dropping the first request.
    target = grant_target()
    name = f"scangate-{target.grant_id}"
    kubesim.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": name,
                "namespace": GRANTS_NAMESPACE,
                "labels": {
                    "app.kubernetes.io/managed-by": "scangate",
                    "scangate.dev/grant": target.grant_id,
                    "scangate.dev/installation": cluster.installation_id,
                },
            },
        }
    )
    kubesim.inject_fault(
        status=None, drop_connection=True, methods=["POST"], resources=["serviceaccounts"], count=1
    )
    await cluster.create_service_account(target)
    assert api_requests(kubesim, "POST", "serviceaccounts") == [0, 409]


async def test_retried_create_conflicting_with_a_foreign_object_is_a_conflict(
    cluster: ClusterClient, kubesim: KubesimHandle
) -> None:
    target = grant_target()
    kubesim.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": f"scangate-{target.grant_id}", "namespace": GRANTS_NAMESPACE},
        }
    )
    kubesim.inject_fault(
        status=None, drop_connection=True, methods=["POST"], resources=["serviceaccounts"], count=1
    )
    with pytest.raises(KubeConflict):
        await cluster.create_service_account(target)


async def test_dropped_connections_over_tls_are_retried(
    tls_cluster: ClusterClient, kubesim_tls: KubesimHandle
) -> None:
    kubesim_tls.inject_fault(status=None, drop_connection=True, methods=["GET"], count=2)
    assert await tls_cluster.namespace_exists("payments")
    assert api_requests(kubesim_tls, "GET", "namespaces") == [0, 0, 200]


async def test_slow_answers_hit_the_request_timeout(kubesim: KubesimHandle) -> None:
    policy = RetryPolicy(tries=2, base_delay=0.01, read_timeout=0.3)
    cluster = await cluster_client(Path(kubesim.admin_kubeconfig), retry=policy)
    try:
        kubesim.set_latency(fixed_ms=1500)
        started = time.monotonic()
        with pytest.raises(KubeUnavailable, match="cannot reach"):
            await cluster.namespace_exists("payments")
        assert time.monotonic() - started < 1.4
    finally:
        await cluster.aclose()


async def test_untrusted_certificate_is_unavailable_and_not_retried(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    config = write_kubeconfig(
        tmp_path / "wrong-ca.kubeconfig",
        server=kubesim_tls.url,
        token=kubesim_tls.admin_token,
        ca_data=self_signed_ca_pem(),
    )
    cluster = await cluster_client(config)
    try:
        with pytest.raises(KubeUnavailable, match="certificate verification failed"):
            await cluster.namespace_exists("payments")
    finally:
        await cluster.aclose()
    assert api_requests(kubesim_tls, "GET", "namespaces") == []
