"""Helpers for kubesim's own tests: clients for admins, ServiceAccounts and static users."""

from __future__ import annotations

import json
import secrets
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle


def token_client(handle: KubesimHandle, token: str) -> client.ApiClient:
    """The official client with a bearer token (and kubesim's CA under TLS)."""
    configuration = client.Configuration()
    configuration.host = handle.url
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    if handle.ca_cert_pem is not None:
        ca_file = handle.admin_kubeconfig.with_name("ca-for-tests.pem")
        ca_file.write_bytes(handle.ca_cert_pem)
        configuration.ssl_ca_cert = str(ca_file)
    configuration.retries = False
    return client.ApiClient(configuration)


def raw_http(handle: KubesimHandle, token: str | None = None) -> httpx.Client:
    """Plain HTTP to kubesim, for requests the official client refuses to build."""
    verify: ssl.SSLContext | bool = False
    if handle.ca_cert_pem is not None:
        verify = ssl.create_default_context(cadata=handle.ca_cert_pem.decode())
    headers = {"Authorization": f"Bearer {token or handle.admin_token}"}
    return httpx.Client(base_url=handle.url, headers=headers, verify=verify, trust_env=False)


def create_service_account(handle: KubesimHandle, namespace: str, name: str) -> None:
    with handle.admin_client() as api:
        client.CoreV1Api(api).create_namespaced_service_account(
            namespace, {"metadata": {"name": name}}
        )


def request_token(
    handle: KubesimHandle, namespace: str, name: str, expiration_seconds: int = 600
) -> Any:
    with handle.admin_client() as api:
        return client.CoreV1Api(api).create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": expiration_seconds}}
        )


def status_of(error: ApiException) -> dict[str, Any]:
    """The Status object kubesim answered with."""
    body: dict[str, Any] = json.loads(error.body)
    return body


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(kubeconfig.with_name("kubectl-cache")),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def admin_core(kubesim: KubesimHandle) -> Iterator[client.CoreV1Api]:
    with kubesim.admin_client() as api:
        yield client.CoreV1Api(api)


def grant_scanner(handle: KubesimHandle, get: list[str], exec_: list[str]) -> str:
    """A token for ServiceAccount scangate-grants/scanner, which may get the pods named in
    `get` and exec into those in `exec_` (in payments), like a scangate grant."""
    create_service_account(handle, "scangate-grants", "scanner")
    handle.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "scan-web-0", "namespace": "payments"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["pods"],
                        "verbs": ["get"],
                        "resourceNames": get,
                    },
                    {
                        "apiGroups": [""],
                        "resources": ["pods/exec"],
                        "verbs": ["get", "create"],
                        "resourceNames": exec_,
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "scan-web-0", "namespace": "payments"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "scan-web-0",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "scanner", "namespace": "scangate-grants"}
                ],
            },
        ]
    )
    token: str = request_token(handle, "scangate-grants", "scanner").status.token
    return token


@pytest.fixture
def scanner_token(kubesim: KubesimHandle) -> str:
    """A ServiceAccount token that may get and exec into pod web-0 only."""
    return grant_scanner(kubesim, ["web-0"], ["web-0"])


@pytest.fixture
def user_token(kubesim: KubesimHandle) -> str:
    """A static token for user "alice" with no permissions beyond the bootstrap ones."""
    token = secrets.token_urlsafe(24)
    kubesim.add_user_token(token, "alice", ["developers"])
    return token


def grant_exec_profile(handle: KubesimHandle, pods: list[str], name: str = "scanner") -> str:
    """A token for ServiceAccount scangate-grants/NAME holding exactly what scangate's `exec`
    profile grants on `pods` in payments: pods get, pods/exec create+get, pods/log get."""
    create_service_account(handle, "scangate-grants", name)
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": pods},
        {
            "apiGroups": [""],
            "resources": ["pods/exec"],
            "verbs": ["create", "get"],
            "resourceNames": pods,
        },
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"], "resourceNames": pods},
    ]
    handle.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": "payments"},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": "payments"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [
                    {"kind": "ServiceAccount", "name": name, "namespace": "scangate-grants"}
                ],
            },
        ]
    )
    token: str = request_token(handle, "scangate-grants", name).status.token
    return token


@pytest.fixture
def run_kubectl() -> Any:
    """The real kubectl with a given kubeconfig: `run_kubectl(kubeconfig, *args)`."""
    return kubectl


@pytest.fixture
def admin_http(kubesim: KubesimHandle) -> Iterator[httpx.Client]:
    """Plain HTTP to the plain-HTTP kubesim as its admin, for hand-built request bodies."""
    with raw_http(kubesim) as http:
        yield http
