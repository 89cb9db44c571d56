"""The RBAC objects every cluster starts with (kube-apiserver's bootstrap policy, trimmed).

They matter for realism: a ServiceAccount token can run discovery and `kubectl auth can-i`
only because `system:discovery` and `system:basic-user` are bound to `system:authenticated`,
and `cluster-admin` is what `system:masters` is bound to. `admin`, `edit` and `view` are
flattened versions of the aggregated roles, limited to the resources kubesim serves.
"""

from __future__ import annotations

from typing import Any, Final

_RBAC = "rbac.authorization.k8s.io"
_READ: Final = ["get", "list", "watch"]
_WRITE: Final = ["create", "delete", "deletecollection", "patch", "update"]

_VIEW_RULES: Final = [
    {
        "apiGroups": [""],
        "resources": [
            "configmaps",
            "pods",
            "pods/log",
            "pods/status",
            "serviceaccounts",
            "services",
            "services/status",
            "namespaces",
            "namespaces/status",
        ],
        "verbs": _READ,
    },
    {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": _READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _READ},
]
_EDIT_RULES: Final = [
    {
        "apiGroups": [""],
        "resources": ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy"],
        "verbs": [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
    },
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps", "pods", "secrets", "serviceaccounts", "services"],
        "verbs": _WRITE,
    },
    {"apiGroups": [""], "resources": ["secrets"], "verbs": _READ},
    {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": _WRITE},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _WRITE},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _WRITE},
]
_ADMIN_RULES: Final = [
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["localsubjectaccessreviews"],
        "verbs": ["create"],
    },
    {"apiGroups": [_RBAC], "resources": ["rolebindings", "roles"], "verbs": [*_READ, *_WRITE]},
]

_DISCOVERY_URLS: Final = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]
_PUBLIC_INFO_URLS: Final = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
# ServiceAccountIssuerDiscovery (GA since 1.21): every ServiceAccount may read the OIDC
# discovery document and the keys its tokens verify against.
_ISSUER_DISCOVERY_URLS: Final = [
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/",
    "/openid/v1/jwks",
    "/openid/v1/jwks/",
]


def _metadata(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    }


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": _metadata(name),
        "rules": rules,
    }


def _group_binding(name: str, role: str, groups: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _metadata(name),
        "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": _RBAC, "kind": "Group", "name": g} for g in groups],
    }


def bootstrap_objects() -> list[dict[str, Any]]:
    """Fresh copies of the bootstrap ClusterRoles and ClusterRoleBindings."""
    view = [dict(r) for r in _VIEW_RULES]
    edit = view + [dict(r) for r in _EDIT_RULES]
    return [
        _cluster_role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
        _cluster_role("admin", edit + [dict(r) for r in _ADMIN_RULES]),
        _cluster_role("edit", edit),
        _cluster_role("view", view),
        _cluster_role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ],
        ),
        _cluster_role("system:discovery", [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}]),
        _cluster_role(
            "system:public-info-viewer",
            [{"nonResourceURLs": _PUBLIC_INFO_URLS, "verbs": ["get"]}],
        ),
        _cluster_role(
            "system:service-account-issuer-discovery",
            [{"nonResourceURLs": _ISSUER_DISCOVERY_URLS, "verbs": ["get"]}],
        ),
        _group_binding("cluster-admin", "cluster-admin", ["system:masters"]),
        _group_binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _group_binding("system:discovery", "system:discovery", ["system:authenticated"]),
        _group_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            ["system:authenticated", "system:unauthenticated"],
        ),
        _group_binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            ["system:serviceaccounts"],
        ),
    ]
