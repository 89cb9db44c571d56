"""The real kubectl against kubesim, over HTTPS (through the generated CA) and plain HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesim.pytest_plugin import KubesimHandle
from tests.support.kubesim_clients import create_service_account, kubectl, request_token


@pytest.fixture(params=["http", "https"])
def cluster(
    request: pytest.FixtureRequest, kubesim: KubesimHandle, kubesim_tls: KubesimHandle
) -> KubesimHandle:
    return kubesim if request.param == "http" else kubesim_tls


def _kubeconfig(handle: KubesimHandle, token: str, tmp_path: Path) -> Path:
    # kubectl sends no bearer token over plain HTTP; for_kubectl carries it in the URL there.
    return handle.token_kubeconfig(token, tmp_path / "kubeconfig", "payments", for_kubectl=True)


def test_kubectl_get_pods_with_admin_kubeconfig_over_tls(kubesim_tls: KubesimHandle) -> None:
    result = kubectl(kubesim_tls.admin_kubeconfig, "get", "pods", "-n", "payments")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[1:]}
    assert rows == {
        "db-0": ["1/1", "Running"],
        "web-0": ["2/2", "Running"],
        "web-1": ["2/2", "Running"],
        "web-2": ["0/1", "Pending"],
    }


def test_kubectl_get_pods_as_admin_over_http(kubesim: KubesimHandle, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(kubesim, kubesim.admin_token, tmp_path)

    result = kubectl(kubeconfig, "get", "pods", "-n", "payments", "-l", "app=web", "-o", "name")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pod/web-0", "pod/web-1", "pod/web-2"]


def test_kubectl_sends_no_token_over_plain_http(kubesim: KubesimHandle) -> None:
    # kubernetes/kubectl#744: the admin kubeconfig works over HTTP for the Python client only.
    result = kubectl(kubesim.admin_kubeconfig, "get", "pods", "-n", "payments")

    assert result.returncode == 1
    assert "You must be logged in to the server" in result.stderr


def test_kubectl_auth_can_i_answers_for_a_service_account(
    cluster: KubesimHandle, tmp_path: Path
) -> None:
    create_service_account(cluster, "scangate-grants", "reader")
    cluster.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "reader", "namespace": "payments"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["pods"],
                        "verbs": ["get"],
                        "resourceNames": ["web-0"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reader", "namespace": "payments"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "reader",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "reader", "namespace": "scangate-grants"}
                ],
            },
        ]
    )
    token = request_token(cluster, "scangate-grants", "reader").status.token
    kubeconfig = _kubeconfig(cluster, token, tmp_path)

    allowed = kubectl(kubeconfig, "auth", "can-i", "get", "pods/web-0")
    other_pod = kubectl(kubeconfig, "auth", "can-i", "get", "pods/web-1")
    listing = kubectl(kubeconfig, "auth", "can-i", "list", "pods")

    assert (allowed.returncode, allowed.stdout.strip()) == (0, "yes")
    assert (other_pod.returncode, other_pod.stdout.strip()) == (1, "no")
    assert (listing.returncode, listing.stdout.strip()) == (1, "no")
    get_allowed = kubectl(kubeconfig, "get", "pod", "web-0", "-o", "name")
    get_denied = kubectl(kubeconfig, "get", "pod", "web-1")
    assert get_allowed.stdout.strip() == "pod/web-0"
    assert (
        'Error from server (Forbidden): pods "web-1" is forbidden: User '
        '"system:serviceaccount:scangate-grants:reader" cannot get resource "pods" in API group '
        '"" in the namespace "payments"'
    ) in get_denied.stderr


def test_kubectl_whoami_and_create_token(kubesim_tls: KubesimHandle) -> None:
    whoami = kubectl(kubesim_tls.admin_kubeconfig, "auth", "whoami", "-o", "jsonpath={.status}")
    too_short = kubectl(
        kubesim_tls.admin_kubeconfig, "create", "token", "default", "-n", "payments",
        "--duration", "5m",
    )  # fmt: skip
    token = kubectl(kubesim_tls.admin_kubeconfig, "create", "token", "default", "-n", "payments")

    assert '"username":"kubesim-admin"' in whoami.stdout
    assert "may not specify a duration less than 10 minutes" in too_short.stderr
    assert token.returncode == 0
    assert token.stdout.count(".") == 2


def test_kubectl_apply_creates_and_updates(kubesim_tls: KubesimHandle, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: payments}\n"
        "data: {mode: strict}\n"
    )
    created = kubectl(kubesim_tls.admin_kubeconfig, "apply", "-f", str(manifest))
    manifest.write_text(manifest.read_text().replace("strict", "lenient"))
    updated = kubectl(kubesim_tls.admin_kubeconfig, "apply", "-f", str(manifest))
    shown = kubectl(
        kubesim_tls.admin_kubeconfig, "get", "configmap", "settings", "-n", "payments",
        "-o", "jsonpath={.data.mode}",
    )  # fmt: skip

    assert created.stdout.strip() == "configmap/settings created", created.stderr
    assert updated.stdout.strip() == "configmap/settings configured", updated.stderr
    assert shown.stdout == "lenient"
