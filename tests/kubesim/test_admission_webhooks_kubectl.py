"""The real kubectl (1.32) against kubesim with a validating webhook registered: `kubectl exec`
(a CONNECT of pods/exec over WebSocket) and `kubectl debug` (an UPDATE of
pods/ephemeralcontainers) reach the webhook with the AdmissionReview kube-apiserver sends, and
a denial reads in kubectl as it does against a real cluster.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubesim.pytest_plugin import KubesimHandle
from tests.kubesim.webhook_server import WebhookServer

HOOK = "guard.scangate.example.com"
GRANT = "scangate-g1"
GRANT_USER = f"system:serviceaccount:scangate-grants:{GRANT}"
# What scangate's `debug` profile grants, on web-0 only.
DEBUG_PROFILE = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch", "update"]},
    {"apiGroups": [""], "resources": ["pods/attach", "pods/exec"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]
GUARDED = [
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CONNECT"],
        "resources": ["pods/exec", "pods/attach"],
    },
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["UPDATE"],
        "resources": ["pods/ephemeralcontainers"],
    },
]
GRANT_IDENTITIES = {
    "name": "grant-identities",
    "expression": "request.userInfo.username.startsWith("
    "'system:serviceaccount:scangate-grants:scangate-')",
}


@pytest.fixture
def guard(kubesim_tls: KubesimHandle, webhook: WebhookServer) -> WebhookServer:
    """The grant guard's registration, as the chart will make it."""
    hook = {
        "name": HOOK,
        "clientConfig": {"url": webhook.url, "caBundle": webhook.ca_bundle},
        "rules": GUARDED,
        "matchConditions": [GRANT_IDENTITIES],
        "failurePolicy": "Fail",
        "sideEffects": "NoneOnDryRun",
        "timeoutSeconds": 5,
        "admissionReviewVersions": ["v1"],
    }
    body = {"metadata": {"name": "scangate-guard"}, "webhooks": [hook]}
    with kubesim_tls.admin_client() as api:
        client.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(body)
    return webhook


def grant_kubeconfig(handle: KubesimHandle, directory: Path, account: str) -> Path:
    handle.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": account, "namespace": "scangate-grants"},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": account, "namespace": "payments"},
                "rules": [{**rule, "resourceNames": ["web-0"]} for rule in DEBUG_PROFILE],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": account, "namespace": "payments"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": account,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": account, "namespace": "scangate-grants"}
                ],
            },
        ]
    )
    with handle.admin_client() as api:
        token = client.CoreV1Api(api).create_namespaced_service_account_token(
            account, "scangate-grants", {"spec": {"expirationSeconds": 600}}
        )
    return handle.token_kubeconfig(
        token.status.token, directory / f"{account}.kubeconfig", "payments"
    )


@pytest.fixture
def grant(kubesim_tls: KubesimHandle, tmp_path: Path) -> Path:
    """A kubeconfig of a grant identity with the debug profile on web-0."""
    return grant_kubeconfig(kubesim_tls, tmp_path, GRANT)


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(kubeconfig.with_name("kubectl-cache")),
            "--request-timeout=20s",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def deny(message: str) -> Any:
    return lambda request: {"allowed": False, "status": {"code": 403, "message": message}}


def test_kubectl_exec_reaches_the_webhook_as_a_connect(
    kubesim_tls: KubesimHandle, guard: WebhookServer, grant: Path
) -> None:
    result = kubectl(grant, "exec", "web-0", "-c", "app", "--", "cat", "/etc/hostname")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "web-0\n"
    [request] = guard.requests()
    assert request["operation"] == "CONNECT"
    assert request["kind"] == {"group": "", "version": "v1", "kind": "PodExecOptions"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert request["subResource"] == request["requestSubResource"] == "exec"
    assert (request["name"], request["namespace"]) == ("web-0", "payments")
    assert request["userInfo"]["username"] == GRANT_USER
    assert request["object"] == {
        "kind": "PodExecOptions",
        "apiVersion": "v1",
        "stdout": True,
        "stderr": True,
        "container": "app",
        "command": ["cat", "/etc/hostname"],
    }
    assert request["oldObject"] is None
    assert request["options"] is None


def test_kubectl_exec_denied_by_the_webhook_prints_the_apiservers_text(
    kubesim_tls: KubesimHandle, guard: WebhookServer, grant: Path
) -> None:
    guard.decide = deny("container app is not allowed for this grant")

    result = kubectl(grant, "exec", "web-0", "-c", "app", "--", "id")

    assert result.returncode == 1
    # The webhook gave a code but no reason, so kubectl names none.
    assert result.stderr == (
        f'Error from server: admission webhook "{HOOK}" denied the request: '
        "container app is not allowed for this grant\n"
    )
    # Nothing ran: the stream never opened.
    assert result.stdout == ""
    assert all(r["status"] == 403 for r in kubesim_tls.requests() if r["subresource"] == "exec")


def test_kubectl_exec_fails_closed_while_the_webhook_is_down(
    kubesim_tls: KubesimHandle, guard: WebhookServer, grant: Path, tmp_path: Path
) -> None:
    guard.stop()
    admin = kubesim_tls.admin_kubeconfig

    refused = kubectl(grant, "exec", "web-0", "-c", "app", "--", "id")
    # Anyone the match conditions leave out never waits for the webhook.
    unaffected = kubectl(admin, "exec", "-n", "payments", "web-0", "-c", "app", "--", "id")

    assert refused.returncode == 1
    address = guard.url.split("/")[2]
    assert refused.stderr == (
        "Error from server (InternalError): Internal error occurred: failed calling webhook "
        f'"{HOOK}": failed to call webhook: Post "{guard.url}?timeout=5s": dial tcp {address}: '
        "connect: connection refused\n"
    )
    assert unaffected.returncode == 0, unaffected.stderr


def test_kubectl_debug_reaches_the_webhook_with_the_pod_before_and_after(
    kubesim_tls: KubesimHandle, guard: WebhookServer, grant: Path
) -> None:
    result = kubectl(grant, "debug", "web-0", "--image=busybox:1.36", "--target=app", "-c", "dbg")

    assert result.returncode == 0, result.stderr
    [request] = guard.requests()
    assert request["operation"] == "UPDATE"
    assert request["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert request["subResource"] == "ephemeralcontainers"
    assert request["userInfo"]["username"] == GRANT_USER
    assert request["oldObject"]["kind"] == request["object"]["kind"] == "Pod"
    assert request["oldObject"]["spec"].get("ephemeralContainers", []) == []
    [added] = request["object"]["spec"]["ephemeralContainers"]
    assert (added["name"], added["image"], added["targetContainerName"]) == (
        "dbg",
        "busybox:1.36",
        "app",
    )
    assert request["options"]["kind"] == "UpdateOptions"


def test_kubectl_debug_denied_by_the_webhook_adds_no_container(
    kubesim_tls: KubesimHandle, guard: WebhookServer, grant: Path
) -> None:
    guard.decide = deny('image "alpine:3" is not in the policy\'s debug_images')

    result = kubectl(grant, "debug", "web-0", "--image=alpine:3", "-c", "dbg")

    assert result.returncode == 1
    assert (
        f'admission webhook "{HOOK}" denied the request: '
        'image "alpine:3" is not in the policy\'s debug_images'
    ) in result.stderr
    with kubesim_tls.admin_client() as api:
        web = client.CoreV1Api(api).read_namespaced_pod("web-0", "payments")
    assert not web.spec.ephemeral_containers


def test_kubectl_attach_reaches_the_webhook_with_pod_attach_options(
    kubesim_tls: KubesimHandle, guard: WebhookServer, grant: Path
) -> None:
    guard.decide = deny("attach is not part of this grant")

    result = kubectl(grant, "attach", "web-0", "-c", "scanner")

    assert result.returncode == 1
    assert result.stderr.endswith(
        f'Error from server: admission webhook "{HOOK}" denied the request: '
        "attach is not part of this grant\n"
    )
    request = guard.requests()[-1]
    assert (request["operation"], request["subResource"]) == ("CONNECT", "attach")
    assert request["object"] == {
        "kind": "PodAttachOptions",
        "apiVersion": "v1",
        "stdout": True,
        "stderr": True,
        "container": "scanner",
    }
