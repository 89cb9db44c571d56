"""kubesim calls validating admission webhooks as kube-apiserver does: a real HTTPS webhook in
the test process, registered with the official client, sees the AdmissionReview the apiserver
would send, and its verdict (or its failure) decides the request with the apiserver's Status.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from tests.kubesim.webhook_server import (
    HOOK,
    POD_CREATE,
    WebhookServer,
    create_pod,
    pod,
    pod_exists,
    refusal,
    register,
    webhook_configuration,
)


def test_a_created_pod_reaches_the_webhook_as_the_apiserver_describes_it(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    register(kubesim, webhook_configuration(webhook))

    created = create_pod(kubesim, pod("scan-1", {"app": "scan"}))

    [received] = webhook.received
    assert received.path == "/validate?timeout=10s"
    assert received.user_agent == "kube-apiserver-admission"
    assert received.review["apiVersion"] == "admission.k8s.io/v1"
    assert received.review["kind"] == "AdmissionReview"
    request = received.request
    assert request["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert request["requestKind"] == request["kind"]
    assert request["requestResource"] == request["resource"]
    assert "subResource" not in request
    assert (request["name"], request["namespace"], request["operation"]) == (
        "scan-1",
        "payments",
        "CREATE",
    )
    assert request["userInfo"] == {
        "username": "kubesim-admin",
        "groups": ["system:masters", "system:authenticated"],
    }
    assert request["dryRun"] is False
    assert request["oldObject"] is None
    assert request["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    # The object as it will be stored: defaulted, with the uid and timestamp the client gets.
    obj = request["object"]
    assert (obj["apiVersion"], obj["kind"]) == ("v1", "Pod")
    assert obj["metadata"]["uid"] == created.metadata.uid
    assert obj["metadata"]["labels"] == {"app": "scan"}
    assert len(request["uid"]) == 36


def test_a_generated_name_is_the_one_the_webhook_saw(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    register(kubesim, webhook_configuration(webhook))
    body = pod("")
    body["metadata"] = {"generateName": "scan-"}

    created = create_pod(kubesim, body)

    [request] = webhook.requests()
    assert request["name"] == created.metadata.name
    assert request["object"]["metadata"]["uid"] == created.metadata.uid


def test_a_denial_is_the_webhooks_status_with_the_apiservers_prefix(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    register(kubesim, webhook_configuration(webhook))
    webhook.decide = lambda request: {
        "allowed": False,
        "status": {"code": 403, "reason": "Forbidden", "message": "image busybox is not allowed"},
    }

    status = refusal(kubesim, pod("scan-1"))

    assert status["code"] == 403
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        f'admission webhook "{HOOK}" denied the request: image busybox is not allowed'
    )
    assert not pod_exists(kubesim, "scan-1")


@pytest.mark.parametrize(
    ("result", "code", "message"),
    [
        (None, 400, f'admission webhook "{HOOK}" denied the request without explanation'),
        (
            {"code": 200, "reason": "NoScan"},
            400,
            f'admission webhook "{HOOK}" denied the request: NoScan',
        ),
        (
            {"code": 422, "message": "bad"},
            422,
            f'admission webhook "{HOOK}" denied the request: bad',
        ),
    ],
)
def test_a_denial_without_a_code_is_a_400(
    kubesim: KubesimHandle,
    webhook: WebhookServer,
    result: dict[str, Any] | None,
    code: int,
    message: str,
) -> None:
    register(kubesim, webhook_configuration(webhook))
    webhook.decide = lambda request: {"allowed": False, **({"status": result} if result else {})}

    status = refusal(kubesim, pod("scan-1"))

    assert (status["code"], status["message"]) == (code, message)


def test_a_webhook_that_is_down_fails_closed_with_an_internal_error(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    register(kubesim, webhook_configuration(webhook))
    url = webhook.url
    webhook.stop()

    status = refusal(kubesim, pod("scan-1"))

    assert status["code"] == 500
    assert status["reason"] == "InternalError"
    address = url.split("/")[2]
    assert status["message"] == (
        f'Internal error occurred: failed calling webhook "{HOOK}": failed to call webhook: '
        f'Post "{url}?timeout=10s": dial tcp {address}: connect: connection refused'
    )
    assert not pod_exists(kubesim, "scan-1")


def test_a_webhook_that_is_down_is_skipped_under_failure_policy_ignore(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    register(kubesim, webhook_configuration(webhook, failurePolicy="Ignore"))
    webhook.stop()

    create_pod(kubesim, pod("scan-1"))

    assert pod_exists(kubesim, "scan-1")


def test_a_webhook_signed_by_another_ca_fails_the_request(
    kubesim: KubesimHandle, webhook: WebhookServer, tmp_path: Path
) -> None:
    (tmp_path / "other").mkdir()
    other = WebhookServer(tmp_path / "other")
    other.start()
    try:
        config = webhook_configuration(webhook)
        config["webhooks"][0]["clientConfig"]["caBundle"] = other.ca_bundle
        register(kubesim, config)

        status = refusal(kubesim, pod("scan-1"))
    finally:
        other.stop()

    assert status["code"] == 500
    assert status["message"].endswith(
        "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    )
    assert webhook.received == []


def test_the_timeout_is_honoured(kubesim: KubesimHandle, webhook: WebhookServer) -> None:
    register(kubesim, webhook_configuration(webhook, timeoutSeconds=1))
    webhook.delay_seconds = 3

    started = time.monotonic()
    status = refusal(kubesim, pod("scan-1"))
    elapsed = time.monotonic() - started

    assert elapsed < 2.5
    assert webhook.received[0].path == "/validate?timeout=1s"
    assert status["code"] == 500
    assert status["message"] == (
        f'Internal error occurred: failed calling webhook "{HOOK}": failed to call webhook: '
        f'Post "{webhook.url}?timeout=1s": context deadline exceeded'
    )


def test_a_dry_run_reaches_the_webhook_marked_dry_run_and_stores_nothing(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    register(kubesim, webhook_configuration(webhook, sideEffects="NoneOnDryRun"))

    create_pod(kubesim, pod("scan-1"), dry_run="All")

    [request] = webhook.requests()
    assert request["dryRun"] is True
    assert request["options"]["dryRun"] == ["All"]
    assert not pod_exists(kubesim, "scan-1")


def test_a_delete_sends_the_old_object_and_the_delete_options(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    rule = {**POD_CREATE, "operations": ["DELETE"]}
    register(kubesim, webhook_configuration(webhook, rules=[rule]))
    webhook.decide = lambda request: {"allowed": False, "status": {"message": "keep it"}}

    with kubesim.admin_client() as api, pytest.raises(ApiException) as raised:
        client.CoreV1Api(api).delete_namespaced_pod(
            "web-1", "payments", body=client.V1DeleteOptions(propagation_policy="Background")
        )

    assert raised.value.status == 400
    [request] = webhook.requests()
    assert request["operation"] == "DELETE"
    assert request["object"] is None
    assert request["oldObject"]["metadata"]["name"] == "web-1"
    assert request["options"]["kind"] == "DeleteOptions"
    assert request["options"]["propagationPolicy"] == "Background"
    assert pod_exists(kubesim, "web-1")


def test_webhook_configurations_are_never_sent_to_webhooks(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    everything = {
        "apiGroups": ["*"],
        "apiVersions": ["*"],
        "operations": ["*"],
        "resources": ["*/*"],
    }
    register(kubesim, webhook_configuration(webhook, rules=[everything]))
    webhook.decide = lambda request: {"allowed": False}

    register(kubesim, webhook_configuration(webhook, name="second"))
    with kubesim.admin_client() as api:
        client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration("second")
        client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration("guard")

    assert webhook.received == []
    create_pod(kubesim, pod("scan-1"))


def test_a_webhooks_warnings_reach_the_client(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    register(kubesim, webhook_configuration(webhook))
    webhook.decide = lambda request: {"allowed": True, "warnings": ['image "busybox" is old']}

    with httpx.Client(base_url=kubesim.url, trust_env=False) as http:
        answer = http.post(
            "/api/v1/namespaces/payments/pods",
            json=pod("scan-1"),
            headers={"Authorization": f"Bearer {kubesim.admin_token}"},
        )

    assert answer.status_code == 201
    assert answer.headers["Warning"] == '299 - "image \\"busybox\\" is old"'


def test_a_token_request_is_admitted_as_a_create_of_the_token_subresource(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    rule = {**POD_CREATE, "resources": ["serviceaccounts/token"]}
    register(kubesim, webhook_configuration(webhook, rules=[rule]))
    webhook.decide = lambda request: {"allowed": False, "status": {"message": "no tokens"}}

    with kubesim.admin_client() as api, pytest.raises(ApiException) as raised:
        client.CoreV1Api(api).create_namespaced_service_account_token(
            "default", "payments", {"spec": {"expirationSeconds": 600}}
        )

    assert raised.value.status == 400
    [request] = webhook.requests()
    assert request["kind"] == {
        "group": "authentication.k8s.io",
        "version": "v1",
        "kind": "TokenRequest",
    }
    assert (request["name"], request["subResource"], request["operation"]) == (
        "default",
        "token",
        "CREATE",
    )
    assert request["object"]["spec"]["expirationSeconds"] == 600


def test_an_update_that_changes_nothing_is_still_admitted(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    rule = {**POD_CREATE, "operations": ["UPDATE"]}
    register(kubesim, webhook_configuration(webhook, rules=[rule]))
    webhook.decide = lambda request: {"allowed": False, "status": {"message": "frozen"}}

    with kubesim.admin_client() as api, pytest.raises(ApiException) as raised:
        client.CoreV1Api(api).patch_namespaced_pod("web-1", "payments", {"metadata": {}})

    assert json.loads(raised.value.body)["message"] == (
        f'admission webhook "{HOOK}" denied the request: frozen'
    )
    [request] = webhook.requests()
    assert request["object"] == request["oldObject"]
    assert request["options"] == {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}


def test_webhooks_with_ever_new_cas_keep_being_called(
    kubesim: KubesimHandle, tmp_path: Path
) -> None:
    # More CAs than kubesim keeps clients for: old clients are closed, new ones still work.
    for index in range(18):
        (tmp_path / str(index)).mkdir()
        server = WebhookServer(tmp_path / str(index))
        server.start()
        try:
            register(kubesim, webhook_configuration(server, name=f"guard-{index}"))
            create_pod(kubesim, pod(f"scan-{index}"))
        finally:
            server.stop()
        with kubesim.admin_client() as api:
            client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(
                f"guard-{index}"
            )
        assert [r["name"] for r in server.requests()] == [f"scan-{index}"]


def test_a_dry_run_update_is_admitted_as_dry_run_and_changes_nothing(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    rule = {**POD_CREATE, "operations": ["UPDATE"]}
    register(kubesim, webhook_configuration(webhook, rules=[rule], sideEffects="NoneOnDryRun"))

    with kubesim.admin_client() as api:
        core = client.CoreV1Api(api)
        answered = core.patch_namespaced_pod(
            "web-1", "payments", {"metadata": {"labels": {"scanned": "yes"}}}, dry_run="All"
        )
        stored = core.read_namespaced_pod("web-1", "payments")

    [request] = webhook.requests()
    assert request["dryRun"] is True
    assert request["object"]["metadata"]["labels"]["scanned"] == "yes"
    assert answered.metadata.labels["scanned"] == "yes"
    assert "scanned" not in (stored.metadata.labels or {})
