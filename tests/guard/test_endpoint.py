"""The guard's HTTPS endpoint, driven with AdmissionReview JSON as kube-apiserver posts it, on
SQLite and PostgreSQL: the response kube-apiserver reads, and the audit trail each decision
leaves (the grant's events in the REST API and the `scangate.audit` log)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.db.models import Grant
from app.grants import repository
from app.main import create_app
from tests.guard.admission_reviews import (
    connect_review,
    ephemeral_review,
    grant_username,
    restricted_debug_container,
)
from tests.support.guard import ROOT_KEY, RunningGuard, TlsFiles, issue_serving_certificate

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api(guard: RunningGuard) -> AsyncIterator[httpx.AsyncClient]:
    """The REST API of the same deployment, as an admin."""
    app = create_app(guard.settings, start_reaper=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://scangate",
            headers={"Authorization": f"Bearer {ROOT_KEY}"},
        ) as client:
            yield client


async def _events(api: httpx.AsyncClient, grant_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/grants/{grant_id}/events")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_allowed_exec_is_answered_as_kube_apiserver_expects_and_recorded(
    guard: RunningGuard,
    add_grant: Callable[..., Any],
    api: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    grant: Grant = await add_grant(scanner="exec", containers=["app"])
    review = connect_review("exec", grant.service_account, command=["inspec", "exec", "/p"])
    with caplog.at_level(logging.INFO, logger="scangate.audit"):
        response = await guard.review(review)

    assert response.status_code == 200
    assert response.json() == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": True},
    }
    [event] = await _events(api, grant.id)
    assert event["type"] == "exec"
    assert event["actor"] == grant.service_account
    assert event["detail"] == {
        "namespace": "payments",
        "pod": "web-0",
        "request_uid": review["request"]["uid"],
        "container": "app",
        "argv": ["inspec", "exec", "/p"],
        "verdict": "allowed",
        "reason": "container 'app' allowed",
    }
    [record] = [r for r in caplog.records if r.name == "scangate.audit"]
    audit: dict[str, Any] = record.audit  # type: ignore[attr-defined]
    assert audit["type"] == "exec"
    assert audit["event_id"] == event["id"]
    assert audit["detail"] == event["detail"]


async def test_exec_into_another_container_is_denied_with_a_403_and_the_reason(
    guard: RunningGuard, add_grant: Callable[..., Any], api: httpx.AsyncClient
) -> None:
    grant: Grant = await add_grant(scanner="exec", containers=["app"])
    review = connect_review("exec", grant.service_account, container="db-proxy")
    response = await guard.review(review)

    answer = response.json()["response"]
    assert answer["allowed"] is False
    assert answer["uid"] == review["request"]["uid"]
    assert answer["status"] == {
        "status": "Failure",
        "code": 403,
        "reason": "Forbidden",
        "message": f"container 'db-proxy' of pod 'web-0' is not allowed: grant {grant.id} "
        "allows only app",
    }
    [event] = await _events(api, grant.id)
    assert (event["type"], event["detail"]["verdict"]) == ("exec", "denied")


async def test_a_revoked_grant_is_refused_even_if_its_token_still_authenticates(
    guard: RunningGuard, add_grant: Callable[..., Any]
) -> None:
    grant: Grant = await add_grant(status="revoked")
    response = await guard.review(connect_review("attach", grant.service_account))
    answer = response.json()["response"]
    assert answer["allowed"] is False
    assert answer["status"]["message"] == f"grant {grant.id} is revoked, not active"


async def test_an_unsafe_debug_container_is_refused_and_recorded_with_its_image(
    guard: RunningGuard, add_grant: Callable[..., Any], api: httpx.AsyncClient
) -> None:
    grant: Grant = await add_grant()
    container = restricted_debug_container(
        image="alpine:3.20", securityContext={"privileged": True, "allowPrivilegeEscalation": True}
    )
    response = await guard.review(ephemeral_review(grant.service_account, container))
    message = response.json()["response"]["status"]["message"]
    assert message.startswith("debug container 'debugger-x7k2p': image 'alpine:3.20' is not")
    assert "(debug_images: busybox:1.36)" in message
    assert "securityContext.privileged is true" in message

    [event] = await _events(api, grant.id)
    assert event["type"] == "debug_container"
    assert event["detail"]["image"] == "alpine:3.20"
    assert event["detail"]["security"]["privileged"] is True
    assert event["detail"]["verdict"] == "denied"


async def test_an_allowed_debug_container_can_then_be_attached_by_a_limited_grant(
    guard: RunningGuard, add_grant: Callable[..., Any], api: httpx.AsyncClient
) -> None:
    grant: Grant = await add_grant(containers=["app"])
    added = await guard.review(
        ephemeral_review(grant.service_account, restricted_debug_container())
    )
    assert added.json()["response"]["allowed"] is True

    attach = connect_review("attach", grant.service_account, container="debugger-x7k2p")
    assert (await guard.review(attach)).json()["response"]["allowed"] is True
    types = [(e["type"], e["detail"]["verdict"]) for e in await _events(api, grant.id)]
    assert types == [("debug_container", "allowed"), ("attach", "allowed")]


async def test_dry_run_is_judged_but_not_recorded(
    guard: RunningGuard, add_grant: Callable[..., Any], api: httpx.AsyncClient
) -> None:
    grant: Grant = await add_grant()
    privileged = restricted_debug_container(securityContext={"privileged": True})
    review = ephemeral_review(grant.service_account, privileged, dry_run=True)
    response = await guard.review(review)
    assert response.json()["response"]["allowed"] is False
    assert await _events(api, grant.id) == []


async def test_identities_that_are_not_grants_pass_untouched(
    guard: RunningGuard, add_grant: Callable[..., Any]
) -> None:
    for username in ("kubernetes-admin", "system:serviceaccount:payments:default"):
        response = await guard.review(connect_review("exec", username))
        assert response.json()["response"]["allowed"] is True
    async with guard.db.session() as session:
        assert await repository.count_active_grants(session) == {}


async def test_an_unknown_grant_is_refused(guard: RunningGuard) -> None:
    review = connect_review("exec", grant_username("01jbq3z5ksxn2m8d7c4v6w9e0r"))
    answer = (await guard.review(review)).json()["response"]
    assert answer["allowed"] is False
    assert answer["status"]["message"] == "this ServiceAccount belongs to no grant scangate knows"


async def test_a_grant_of_another_cluster_is_refused_and_unknown_clusters_are_404(
    guard: RunningGuard, add_grant: Callable[..., Any]
) -> None:
    grant: Grant = await add_grant(cluster="staging")
    answer = (await guard.review(connect_review("exec", grant.service_account))).json()
    assert "belongs to another cluster" in answer["response"]["status"]["message"]
    missing = await guard.review(connect_review("exec", grant.service_account), cluster="nope")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}},
        [],
    ],
)
async def test_malformed_reviews_are_400_so_the_failure_policy_applies(
    guard: RunningGuard, body: Any
) -> None:
    response = await guard.review(body)
    assert response.status_code == 400
    assert "not an admission.k8s.io/v1 AdmissionReview" in response.json()["message"]


async def test_a_rotated_certificate_is_served_without_a_restart(
    guard: RunningGuard, tls_files: TlsFiles
) -> None:
    issue_serving_certificate(tls_files, hosts=("scangate-guard.scangate.svc", "localhost"))
    assert guard.certificate.reload_if_changed()
    # A fresh connection (the client's pool would reuse the old session) sees the new pair.
    verify = ssl.create_default_context(cadata=tls_files.ca_pem.decode())
    async with httpx.AsyncClient(verify=verify) as fresh:
        response = await fresh.get(f"{guard.url}/healthz")
        assert response.status_code == 200
        peer = response.extensions["network_stream"].get_extra_info("ssl_object")
        der = peer.getpeercert(binary_form=True)
    served = ssl.DER_cert_to_PEM_cert(der).encode()
    assert served == tls_files.cert_file.read_bytes()
    assert not guard.certificate.reload_if_changed()


async def test_a_debug_policy_without_debug_images_is_warned_about_at_start(
    guard_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from app.guard.app import create_guard_app

    policy = guard_settings.policies[0].model_copy(update={"debug_images": []})
    settings = guard_settings.model_copy(update={"policies": [policy]})
    app = create_guard_app(settings)
    with caplog.at_level(logging.WARNING, logger="scangate.guard"):
        async with app.lifespan():
            pass
    assert [r.getMessage() for r in caplog.records if r.name == "scangate.guard"] == [
        "policy payments-ci grants the debug profile but lists no debug_images: the guard "
        "refuses every debug container of its grants"
    ]
