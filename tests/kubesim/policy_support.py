"""Builders and a raw-HTTP client for kubesim's admission policy tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

from kubesim.pytest_plugin import KubesimHandle

ADMISSION = "/apis/admissionregistration.k8s.io/v1"
ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789"


class Cluster:
    """Raw HTTP to kubesim as the admin, alice or bob (all in system:masters, so RBAC stays
    out of the way: admission policies apply to cluster admins too)."""

    def __init__(self, handle: KubesimHandle) -> None:
        self.handle = handle
        handle.add_user_token(ALICE, "alice", ["system:masters"])
        handle.add_user_token(BOB, "bob", ["system:masters"])

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.handle.admin_token}"}
        if body is not None:
            content_type = kw.pop("content_type", "application/json")
            headers["Content-Type"] = content_type
            kw["content"] = json.dumps(body)
        with httpx.Client(base_url=self.handle.url, trust_env=False, timeout=30) as http:
            return http.request(method, path, headers=headers, **kw)

    def install(self, policy: dict[str, Any], binding: dict[str, Any] | None = None) -> None:
        created = self.request("POST", f"{ADMISSION}/validatingadmissionpolicies", policy)
        assert created.status_code == 201, created.text
        if binding is not None:
            made = self.request("POST", f"{ADMISSION}/validatingadmissionpolicybindings", binding)
            assert made.status_code == 201, made.text

    def create_configmap(
        self, name: str, labels: dict[str, str] | None = None, ns: str = "payments", **kw: Any
    ) -> httpx.Response:
        body = {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": "v"}}
        return self.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body, **kw)


def policy(
    name: str = "demo",
    validations: list[dict[str, Any]] | None = None,
    *,
    resources: list[str] | None = None,
    operations: list[str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    rule = {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": operations or ["CREATE", "UPDATE"],
        "resources": resources or ["configmaps"],
    }
    body: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {"resourceRules": [rule]},
            "validations": validations
            or [{"expression": "object.metadata.name.startsWith('ok-')"}],
            **spec,
        },
    }
    return body


def binding(
    name: str = "demo-binding",
    policy_name: str = "demo",
    actions: list[str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": policy_name, "validationActions": actions or ["Deny"], **spec},
    }


def denial(resource: str, name: str, message: str, p: str = "demo", b: str = "demo-binding") -> str:
    return (
        f"{resource} \"{name}\" is forbidden: ValidatingAdmissionPolicy '{p}' with binding "
        f"'{b}' denied request: {message}"
    )
