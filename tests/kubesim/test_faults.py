"""Fault injection does what it says: errors, Retry-After, latency, dropped connections."""

from __future__ import annotations

import time

import httpx
import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimError, KubesimHandle
from tests.support.kubesim_clients import raw_http, status_of


def _get_pod_status(handle: KubesimHandle) -> int:
    with raw_http(handle) as http:
        return http.get("/api/v1/namespaces/payments/pods/web-0").status_code


def test_fault_with_count_fires_that_many_times(kubesim: KubesimHandle) -> None:
    kubesim.inject_fault(status=500, count=2)

    assert [_get_pod_status(kubesim) for _ in range(3)] == [500, 500, 200]


def test_injected_error_is_a_kubernetes_status(
    admin_core: client.CoreV1Api, kubesim: KubesimHandle
) -> None:
    kubesim.inject_fault(status=503, resources=["pods"], count=1)

    with pytest.raises(ApiException) as failed:
        admin_core.read_namespaced_pod("web-0", "payments")

    assert failed.value.status == 503
    assert status_of(failed.value)["reason"] == "ServiceUnavailable"


def test_too_many_requests_carries_retry_after(kubesim: KubesimHandle) -> None:
    kubesim.inject_fault(status=429, retry_after=7, count=1)

    with raw_http(kubesim) as http:
        response = http.get("/api/v1/namespaces/payments/pods")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["reason"] == "TooManyRequests"
    assert response.json()["details"] == {"retryAfterSeconds": 7}


def test_conflict_fault(kubesim: KubesimHandle) -> None:
    kubesim.inject_fault(status=409, methods=["PUT"])

    with raw_http(kubesim) as http:
        pod = http.get("/api/v1/namespaces/payments/pods/web-0").json()
        response = http.put("/api/v1/namespaces/payments/pods/web-0", json=pod)

    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"


def test_faults_match_only_their_methods_and_resources(kubesim: KubesimHandle) -> None:
    kubesim.inject_fault(status=500, methods=["POST"], resources=["serviceaccounts/token"])

    with raw_http(kubesim) as http:
        assert http.get("/api/v1/namespaces/payments/pods").status_code == 200
        assert (
            http.post(
                "/api/v1/namespaces/payments/serviceaccounts", json={"metadata": {"name": "sa"}}
            ).status_code
            == 201
        )
        token = http.post("/api/v1/namespaces/payments/serviceaccounts/sa/token", json={"spec": {}})
    assert token.status_code == 500


def test_probabilistic_faults_are_deterministic_after_reset(kubesim: KubesimHandle) -> None:
    def run() -> list[int]:
        kubesim.reset()
        kubesim.inject_fault(status=500, probability=0.5)
        return [_get_pod_status(kubesim) for _ in range(20)]

    first, second = run(), run()

    assert first == second
    assert 0 < first.count(500) < 20


def test_clear_faults_stops_them(kubesim: KubesimHandle) -> None:
    kubesim.inject_fault(status=500)
    kubesim.clear_faults()

    assert _get_pod_status(kubesim) == 200


def test_dropped_connection_gets_no_response(kubesim: KubesimHandle) -> None:
    kubesim.inject_fault(status=None, drop_connection=True, count=1)

    with raw_http(kubesim) as http, pytest.raises(httpx.TransportError):
        http.get("/api/v1/namespaces/payments/pods/web-0")

    assert _get_pod_status(kubesim) == 200
    assert [r["status"] for r in kubesim.requests()][-2:] == [0, 200]


def test_official_client_sees_dropped_connection_as_protocol_error(
    kubesim: KubesimHandle,
) -> None:
    kubesim.inject_fault(status=None, drop_connection=True, count=1)
    with kubesim.admin_client() as api:
        api.configuration.retries = False
        api.rest_client.pool_manager.connection_pool_kw["retries"] = False
        with pytest.raises(urllib3.exceptions.HTTPError):
            client.CoreV1Api(api).read_namespaced_pod("web-0", "payments")


def test_latency_is_added(kubesim: KubesimHandle) -> None:
    kubesim.set_latency(fixed_ms=150)
    with raw_http(kubesim) as http:
        http.get("/version")  # connect first, so only the request itself is timed
        started = time.perf_counter()
        http.get("/api/v1/namespaces/payments/pods/web-0")
        elapsed = time.perf_counter() - started

    assert elapsed >= 0.15


def test_latency_jitter_stays_within_bounds(kubesim: KubesimHandle) -> None:
    kubesim.set_latency(fixed_ms=20, jitter_ms=40)
    with raw_http(kubesim) as http:
        http.get("/version")
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            http.get("/version")
            timings.append(time.perf_counter() - started)

    assert all(0.02 <= t < 0.5 for t in timings)


def test_admin_endpoint_refuses_other_users(kubesim: KubesimHandle) -> None:
    kubesim.add_user_token("user-token", "mallory", ["system:masters"])

    with raw_http(kubesim, "user-token") as http:
        response = http.post("/_kubesim/faults", json={"status": 500})
    with raw_http(kubesim, "wrong") as http:
        anonymous = http.post("/_kubesim/reset")

    assert response.status_code == 403
    assert anonymous.status_code == 401


def test_invalid_fault_is_refused(kubesim: KubesimHandle) -> None:
    with pytest.raises(KubesimError, match="probability"):
        kubesim.inject_fault(probability=2.0)


def test_stopped_cluster_refuses_connections_and_restarts_on_same_url(
    kubesim: KubesimHandle,
) -> None:
    url = kubesim.url
    kubesim.stop()

    with pytest.raises(httpx.ConnectError):
        _get_pod_status(kubesim)

    kubesim.start()
    assert kubesim.url == url
    assert _get_pod_status(kubesim) == 200


def test_dropped_connection_over_tls(kubesim_tls: KubesimHandle) -> None:
    kubesim_tls.inject_fault(status=None, drop_connection=True, count=1, resources=["pods"])

    with raw_http(kubesim_tls) as http:
        with pytest.raises(httpx.TransportError):
            http.get("/api/v1/namespaces/payments/pods/web-0")
        assert http.get("/api/v1/namespaces/payments/pods/web-0").status_code == 200
