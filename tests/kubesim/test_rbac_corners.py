"""RBAC validation and escalation corners, against upstream's rules.

- ClusterRole policybased storage: an aggregationRule (on the new or the old object) needs
  `*` on `*.*` and every non-resource URL unless the writer has `escalate`.
- rbac/v1 defaulting: an omitted apiGroup on roleRef and on User/Group subjects is filled in.
- rbac validation (validateRoleBindingSubject): a ServiceAccount subject's name is a DNS
  subdomain, a ClusterRoleBinding's ServiceAccount subject needs a namespace, User/Group subjects
  belong to the RBAC group.
- Bootstrap policy: `system:service-account-issuer-discovery`, bound to every ServiceAccount.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kubesim.pytest_plugin import KubesimHandle

_RBAC = "rbac.authorization.k8s.io"
_CLUSTER_ROLES = f"/apis/{_RBAC}/v1/clusterroles"
_WRITER_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def _http(handle: KubesimHandle, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=handle.url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
    )


def _aggregated(name: str, rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules or [],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"team": "scan"}}]},
    }


@pytest.fixture
def role_writer(kubesim: KubesimHandle) -> httpx.Client:
    """User "writer": may read and write every resource, but holds neither `escalate` (nor any
    other verb beyond these) nor the non-resource URLs, so not full authority."""
    kubesim.add_user_token("writer-token", "writer", [])
    kubesim.apply(
        [
            {
                "apiVersion": f"{_RBAC}/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "all-resources"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": _WRITER_VERBS}],
            },
            {
                "apiVersion": f"{_RBAC}/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "writer-all-resources"},
                "roleRef": {"kind": "ClusterRole", "name": "all-resources"},
                "subjects": [{"kind": "User", "name": "writer"}],
            },
        ]
    )
    return _http(kubesim, "writer-token")


def test_aggregation_rule_needs_full_authority(role_writer: httpx.Client) -> None:
    with role_writer as http:
        plain = http.post(_CLUSTER_ROLES, json={**_aggregated("plain"), "aggregationRule": None})
        aggregated = http.post(_CLUSTER_ROLES, json=_aggregated("gatherer"))

    assert plain.status_code == 201
    assert aggregated.status_code == 403
    assert aggregated.json()["message"] == (
        f'clusterroles.{_RBAC} "gatherer" is forbidden: must have cluster-admin privileges to '
        "use the aggregationRule"
    )


def test_removing_an_aggregation_rule_needs_full_authority(
    kubesim: KubesimHandle, role_writer: httpx.Client
) -> None:
    kubesim.apply(_aggregated("gatherer"))
    with role_writer as http:
        current = http.get(f"{_CLUSTER_ROLES}/gatherer").json()
        current.pop("aggregationRule")
        response = http.put(f"{_CLUSTER_ROLES}/gatherer", json=current)

    assert response.status_code == 403
    assert "aggregationRule" in response.json()["message"]


def test_admin_may_write_an_aggregation_rule(kubesim: KubesimHandle) -> None:
    with _http(kubesim, kubesim.admin_token) as http:
        response = http.post(_CLUSTER_ROLES, json=_aggregated("gatherer"))

    assert response.status_code == 201
    assert response.json()["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"team": "scan"}}
    ]


def test_omitted_api_groups_are_defaulted(kubesim: KubesimHandle) -> None:
    binding = {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "defaults", "namespace": "payments"},
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "bob"},
            {"kind": "Group", "name": "auditors"},
            {"kind": "ServiceAccount", "name": "scanner"},
        ],
    }
    with _http(kubesim, kubesim.admin_token) as http:
        response = http.post(f"/apis/{_RBAC}/v1/namespaces/payments/rolebindings", json=binding)

    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["roleRef"]["apiGroup"] == _RBAC
    assert [s.get("apiGroup") for s in stored["subjects"]] == [_RBAC, _RBAC, None]


@pytest.mark.parametrize(
    ("kind", "subject", "field", "reason"),
    [
        ("RoleBinding", {"kind": "ServiceAccount", "name": "Bad_Name"}, "subjects[0].name",
         "FieldValueInvalid"),
        ("RoleBinding", {"kind": "ServiceAccount", "name": "ok", "apiGroup": _RBAC},
         "subjects[0].apiGroup", "FieldValueNotSupported"),
        ("ClusterRoleBinding", {"kind": "ServiceAccount", "name": "ok"},
         "subjects[0].namespace", "FieldValueRequired"),
        ("RoleBinding", {"kind": "User", "name": "bob", "apiGroup": "example.com"},
         "subjects[0].apiGroup", "FieldValueNotSupported"),
        ("RoleBinding", {"kind": "Robot", "name": "r2"}, "subjects[0].kind",
         "FieldValueNotSupported"),
        ("RoleBinding", {"kind": "Group", "name": ""}, "subjects[0].name", "FieldValueRequired"),
    ],
)  # fmt: skip
def test_binding_subjects_are_validated(
    kubesim: KubesimHandle, kind: str, subject: dict[str, str], field: str, reason: str
) -> None:
    namespaced = kind == "RoleBinding"
    binding = {
        "apiVersion": f"{_RBAC}/v1",
        "kind": kind,
        "metadata": {"name": "checked", **({"namespace": "payments"} if namespaced else {})},
        "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": "view"},
        "subjects": [subject],
    }
    path = (
        f"/apis/{_RBAC}/v1/namespaces/payments/rolebindings"
        if namespaced
        else f"/apis/{_RBAC}/v1/clusterrolebindings"
    )
    with _http(kubesim, kubesim.admin_token) as http:
        response = http.post(path, json=binding)

    assert response.status_code == 422
    causes = {(c["field"], c["reason"]) for c in response.json()["details"]["causes"]}
    assert (field, reason) in causes


def test_service_accounts_may_read_issuer_discovery(kubesim: KubesimHandle) -> None:
    kubesim.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "scanner", "namespace": "payments"}}
    )  # fmt: skip
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/openid/v1/jwks", "verb": "get"}},
    }
    service_account = {
        "user": "system:serviceaccount:payments:scanner",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:payments"],
    }
    person = {"user": "bob", "groups": ["system:authenticated"]}
    with _http(kubesim, kubesim.admin_token) as http:
        role = http.get(f"{_CLUSTER_ROLES}/system:service-account-issuer-discovery")
        answers = [
            http.post(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                json={**review, "spec": {**review["spec"], **who}},
            ).json()["status"]["allowed"]
            for who in (service_account, person)
        ]

    assert role.status_code == 200
    assert role.json()["rules"] == [
        {
            "nonResourceURLs": [
                "/.well-known/openid-configuration",
                "/.well-known/openid-configuration/",
                "/openid/v1/jwks",
                "/openid/v1/jwks/",
            ],
            "verbs": ["get"],
        }
    ]
    assert answers == [True, False]


def test_escalate_allows_an_aggregation_rule(
    kubesim: KubesimHandle, role_writer: httpx.Client
) -> None:
    kubesim.apply(
        [
            {
                "apiVersion": f"{_RBAC}/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "escalator"},
                "rules": [
                    {"apiGroups": [_RBAC], "resources": ["clusterroles"], "verbs": ["escalate"]}
                ],
            },
            {
                "apiVersion": f"{_RBAC}/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "writer-escalates"},
                "roleRef": {"kind": "ClusterRole", "name": "escalator"},
                "subjects": [{"kind": "User", "name": "writer"}],
            },
        ]
    )
    with role_writer as http:
        response = http.post(_CLUSTER_ROLES, json=_aggregated("gatherer"))

    assert response.status_code == 201
