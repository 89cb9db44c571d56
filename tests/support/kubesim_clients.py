"""Clients of kubesim for its own tests: the official client and plain HTTP with any bearer
token, ServiceAccounts and tokens made as the admin, and kubectl."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from tests.support.kubectl import kubectl as run_kubectl


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
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
        )


def request_token(
    handle: KubesimHandle, namespace: str, name: str, expiration_seconds: int = 600
) -> client.AuthenticationV1TokenRequest:
    # A plain manifest (the client sends dicts as they are): its model would demand audiences.
    body: Any = {"spec": {"expirationSeconds": expiration_seconds}}
    with handle.admin_client() as api:
        return client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, body)


def status_of(error: ApiException) -> dict[str, Any]:
    """The Status object kubesim answered with."""
    assert error.body is not None
    body: dict[str, Any] = json.loads(error.body)
    return body


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl as kubesim's own tests run it: no client-side request timeout, and a discovery
    cache of its own next to the kubeconfig instead of the user's ~/.kube/cache."""
    return run_kubectl(
        kubeconfig, *args, request_timeout=None, cache_dir=kubeconfig.with_name("kubectl-cache")
    )


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
    status = request_token(handle, "scangate-grants", "scanner").status
    assert status is not None
    assert status.token
    return status.token


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
    status = request_token(handle, "scangate-grants", name).status
    assert status is not None
    assert status.token
    return status.token
