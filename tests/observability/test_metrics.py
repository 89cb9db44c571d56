"""`/metrics`: Prometheus exposition of what the service does, parsed with prometheus_client's
own parser, after driving the real service against kubesim."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.main import reaper_pass
from app.services import services_of
from kubesim.pytest_plugin import KubesimHandle
from tests.support.metrics import parse_metrics, sample
from tests.support.scangate import Deployment, Scangate

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
EXEC = {"cluster": "default", "scanner": "exec"}


async def scrape(scangate: Scangate) -> Samples:
    response = await scangate.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(response.text)


async def test_metrics_expose_every_family_from_the_start(scangate: Scangate) -> None:
    response = await scangate.http.get("/metrics")

    families = {f.name for f in text_string_to_metric_families(response.text)}
    for family in (
        "scangate_grants_created",
        "scangate_grants_revoked",
        "scangate_grants_expired",
        "scangate_grants_failed",
        "scangate_grants_active",
        "scangate_http_request_duration_seconds",
        "scangate_kube_request_duration_seconds",
        "scangate_kube_request_errors",
        "scangate_reaper_pass_duration_seconds",
        "scangate_reaper_pass_errors",
        "scangate_revocation_lag_seconds",
        "scangate_orphans_swept",
        "process_cpu_seconds",
    ):
        assert family in families, family
    samples = parse_metrics(response.text)
    # Every configured cluster x scanner series exists at 0, so rates and alerts work at once.
    for scanner in ("exec", "debug", "sidecar"):
        labels = {"cluster": "default", "scanner": scanner}
        assert sample(samples, "scangate_grants_created_total", **labels) == 0
        assert sample(samples, "scangate_grants_active", **labels) == 0


async def test_openmetrics_when_the_scraper_asks_for_it(scangate: Scangate) -> None:
    response = await scangate.http.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )

    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


async def test_grant_lifecycle_counts_by_cluster_and_scanner(
    scangate: Scangate, kubesim: KubesimHandle
) -> None:
    first = await scangate.grant()
    await scangate.grant(scanner="debug")
    after_create = await scrape(scangate)
    await scangate.revoke(first["id"])
    kubesim.inject_fault(status=403, methods=["POST"], resources=["roles"])
    assert (await scangate.create()).status_code == 502
    kubesim.clear_faults()
    after_end = await scrape(scangate)

    assert sample(after_create, "scangate_grants_created_total", **EXEC) == 1
    assert (
        sample(after_create, "scangate_grants_created_total", cluster="default", scanner="debug")
        == 1
    )
    assert sample(after_create, "scangate_grants_active", **EXEC) == 1
    assert sample(after_end, "scangate_grants_revoked_total", **EXEC) == 1
    assert sample(after_end, "scangate_grants_failed_total", **EXEC) == 1
    assert sample(after_end, "scangate_grants_active", **EXEC) == 0
    assert sample(after_end, "scangate_grants_active", cluster="default", scanner="debug") == 1


async def test_expiry_counts_and_measures_revocation_lag(scangate: Scangate) -> None:
    grant = await scangate.grant()
    await scangate.expire_soon(grant["id"], seconds=0.3)
    assert await scangate.wait_for_status(grant["id"], {"expired"}) == "expired"

    samples = await scrape(scangate)

    assert sample(samples, "scangate_grants_expired_total", **EXEC) == 1
    assert sample(samples, "scangate_revocation_lag_seconds_count", cluster="default") == 1
    lag = sample(samples, "scangate_revocation_lag_seconds_sum", cluster="default")
    assert lag is not None
    assert 0 <= lag < 2.0  # the design's promise is well under a second
    assert (sample(samples, "scangate_reaper_pass_duration_seconds_count") or 0) >= 1


async def test_request_latency_is_labelled_by_route_template(scangate: Scangate) -> None:
    grant = await scangate.grant()
    await scangate.get(grant["id"])
    await scangate.http.get(f"/nothing/here/{grant['id']}")

    response = await scangate.http.get("/metrics")
    samples = parse_metrics(response.text)

    route = {"method": "GET", "route": "/v1/grants/{grant_id}", "status": "200"}
    assert sample(samples, "scangate_http_request_duration_seconds_count", **route) == 1
    created = {"method": "POST", "route": "/v1/grants", "status": "201"}
    assert sample(samples, "scangate_http_request_duration_seconds_count", **created) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert sample(samples, "scangate_http_request_duration_seconds_count", **unmatched) == 1
    assert grant["id"] not in response.text  # raw paths never become label values


async def test_kubernetes_calls_are_timed_and_errors_counted_by_verb_and_resource(
    scangate: Scangate, kubesim: KubesimHandle
) -> None:
    await scangate.grant()
    kubesim.inject_fault(status=503, methods=["POST"], resources=["serviceaccounts"], count=1)
    await scangate.grant()

    samples = await scrape(scangate)

    role = {"cluster": "default", "verb": "create", "resource": "roles.rbac.authorization.k8s.io"}
    assert sample(samples, "scangate_kube_request_duration_seconds_count", **role) == 2
    sa = {"cluster": "default", "verb": "create", "resource": "serviceaccounts"}
    # One attempt failed with 503 and was retried: two observations, one error.
    assert sample(samples, "scangate_kube_request_duration_seconds_count", **sa) == 3
    assert sample(samples, "scangate_kube_request_errors_total", **sa, error="unavailable") == 1
    assert (
        sample(samples, "scangate_kube_request_errors_total", **role, error="unavailable") is None
    )


async def test_orphans_swept_are_counted(
    scangate_without_reaper: Scangate, kubesim: KubesimHandle
) -> None:
    scangate = scangate_without_reaper
    kubesim.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": f"scangate-{suffix}",
                    "namespace": "scangate-grants",
                    "labels": {
                        "app.kubernetes.io/managed-by": "scangate",
                        "scangate.dev/grant": suffix,
                        "scangate.dev/installation": "scangate-grants",
                    },
                },
            }
            for suffix in ("01jbq3z5ksxn2m8d7c4v6w9e0r", "01jbq3z5ksxn2m8d7c4v6w9e0s")
        ]
    )
    report = await reaper_pass(scangate.services).run(sweep=True)

    assert report.swept == 2
    samples = await scrape(scangate)
    assert sample(samples, "scangate_orphans_swept_total", cluster="default") == 2


def created(app: FastAPI) -> float | None:
    value: float | None = services_of(app).metrics.registry.get_sample_value(
        "scangate_grants_created_total", EXEC
    )
    return value


async def test_each_app_has_its_own_registry(deployment: Deployment) -> None:
    async with (
        deployment.running(start_reaper=False) as one,
        deployment.running(start_reaper=False) as two,
    ):
        await one.grant()

        assert two.services.metrics.registry is not one.services.metrics.registry
        assert created(one.app) == 1
        assert created(two.app) == 0
