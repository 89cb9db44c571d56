"""Authorization as the server applies it: request attributes, reviews, escalation on writes."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from tests.support.kubesim_clients import raw_http, status_of, token_client

RBAC = "rbac.authorization.k8s.io"


def _grant(handle: KubesimHandle, user: str, *rules: dict[str, Any], ns: str = "payments") -> None:
    handle.apply(
        [
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "Role",
                "metadata": {"name": f"{user}-role", "namespace": ns},
                "rules": list(rules),
            },
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{user}-role", "namespace": ns},
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": f"{user}-role"},
                "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user}],
            },
        ]
    )


def _rule(verbs: str, resources: str, group: str = "", names: str = "") -> dict[str, Any]:
    rule: dict[str, Any] = {
        "apiGroups": [group],
        "resources": resources.split(),
        "verbs": verbs.split(),
    }
    if names:
        rule["resourceNames"] = names.split()
    return rule


def test_list_narrowed_by_field_selector_is_authorized_as_that_name(
    kubesim: KubesimHandle, user_token: str
) -> None:
    _grant(kubesim, "alice", _rule("list", "pods", names="web-0"))

    with raw_http(kubesim, user_token) as http:
        narrowed = http.get(
            "/api/v1/namespaces/payments/pods", params={"fieldSelector": "metadata.name=web-0"}
        )
        everything = http.get("/api/v1/namespaces/payments/pods")

    assert [p["metadata"]["name"] for p in narrowed.json()["items"]] == ["web-0"]
    assert everything.status_code == 403
    assert everything.json()["message"] == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
        'namespace "payments"'
    )


def test_forbidden_status_details(kubesim: KubesimHandle, user_token: str) -> None:
    with token_client(kubesim, user_token) as api, pytest.raises(ApiException) as denied:
        client.RbacAuthorizationV1Api(api).read_namespaced_role("x", "payments")

    assert status_of(denied.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'roles.rbac.authorization.k8s.io "x" is forbidden: User "alice" cannot get '
        'resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "payments"',
        "reason": "Forbidden",
        "details": {"name": "x", "group": RBAC, "kind": "roles"},
        "code": 403,
    }


def test_denied_request_learns_nothing_about_missing_objects(
    kubesim: KubesimHandle, user_token: str
) -> None:
    with raw_http(kubesim, user_token) as http:
        response = http.get("/api/v1/namespaces/payments/secrets/does-not-exist")

    assert response.status_code == 403


def test_exec_is_forbidden_without_the_subresource(kubesim: KubesimHandle, user_token: str) -> None:
    _grant(kubesim, "alice", _rule("get create", "pods"))

    with raw_http(kubesim, user_token) as http:
        response = http.post("/api/v1/namespaces/payments/pods/web-0/exec?command=true")

    assert response.status_code == 403
    assert 'cannot create resource "pods/exec"' in response.json()["message"]


def test_allowed_exec_without_a_websocket_upgrade_is_refused(kubesim: KubesimHandle) -> None:
    # Streaming needs an upgrade (the apiserver's "Upgrade request required"); SPDY upgrades
    # get a clear 501, since kubesim streams over WebSocket only (tests/kubesim/test_exec_*).
    exec_url = "/api/v1/namespaces/payments/pods/web-0/exec?command=true&container=app"
    with raw_http(kubesim) as http:
        plain = http.post(exec_url)
        spdy = http.post(exec_url, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
        attach = http.get("/api/v1/namespaces/payments/pods/web-0/attach?container=app")
        missing = http.post("/api/v1/namespaces/payments/pods/nope/exec?command=true")

    assert (plain.status_code, plain.json()["message"]) == (400, "Upgrade request required")
    assert spdy.status_code == 501
    assert "kubesim serves pods/exec over WebSocket only" in spdy.json()["message"]
    assert attach.status_code == 400
    assert missing.status_code == 404


def test_pod_log_needs_a_container_when_there_are_several(kubesim: KubesimHandle) -> None:
    with raw_http(kubesim) as http:
        ambiguous = http.get("/api/v1/namespaces/payments/pods/web-0/log")
        named = http.get("/api/v1/namespaces/payments/pods/web-0/log?container=scanner")

    assert ambiguous.status_code == 400
    assert ambiguous.json()["message"] == (
        "a container name must be specified for pod web-0, choose one of: [app scanner]"
    )
    assert named.status_code == 200


def test_subject_access_review_answers_for_another_user(kubesim: KubesimHandle) -> None:
    _grant(kubesim, "alice", _rule("get", "pods", names="web-0"))
    review = {
        "spec": {
            "user": "alice",
            "groups": ["system:authenticated"],
            "resourceAttributes": {
                "namespace": "payments",
                "verb": "get",
                "resource": "pods",
                "name": "web-0",
            },
        }
    }

    with kubesim.admin_client() as api:
        answer = client.AuthorizationV1Api(api).create_subject_access_review(review)

    assert answer.status.allowed is True
    assert answer.status.reason.startswith("RBAC: allowed by RoleBinding")


def test_self_subject_rules_review_lists_held_rules(
    kubesim: KubesimHandle, user_token: str
) -> None:
    _grant(kubesim, "alice", _rule("get", "pods", names="web-0 web-1"))

    with token_client(kubesim, user_token) as api:
        review = client.AuthorizationV1Api(api).create_self_subject_rules_review(
            {"spec": {"namespace": "payments"}}
        )

    held = [(r.verbs, r.resources, r.resource_names) for r in review.status.resource_rules]
    assert (["get"], ["pods"], ["web-0", "web-1"]) in held
    assert review.status.incomplete is False


def test_updating_a_role_beyond_held_permissions_is_forbidden(
    kubesim: KubesimHandle, user_token: str
) -> None:
    _grant(kubesim, "alice", _rule("get update patch", "roles", group=RBAC), _rule("get", "pods"))
    kubesim.apply(
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": "payments"},
            "rules": [_rule("get", "pods")],
        }
    )

    with token_client(kubesim, user_token) as api:
        rbac = client.RbacAuthorizationV1Api(api)
        widened = {"rules": [_rule("get delete", "pods")]}
        with pytest.raises(ApiException) as denied:
            rbac.patch_namespaced_role("reader", "payments", widened)
        narrowed = rbac.patch_namespaced_role(
            "reader", "payments", {"metadata": {"labels": {"a": "b"}}}
        )

    assert denied.value.status == 403
    assert "is attempting to grant RBAC permissions not currently held" in denied.value.body
    assert narrowed.metadata.labels == {"a": "b"}


def test_cluster_role_creation_needs_cluster_wide_permissions(
    kubesim: KubesimHandle, user_token: str
) -> None:
    kubesim.apply(
        [
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "role-writer"},
                "rules": [_rule("create", "clusterroles", group=RBAC)],
            },
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "alice-role-writer"},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "role-writer"},
                "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "alice"}],
            },
        ]
    )
    # Holding a permission in one namespace is not holding it cluster-wide.
    _grant(kubesim, "alice", _rule("get", "secrets"))

    with token_client(kubesim, user_token) as api, pytest.raises(ApiException) as denied:
        client.RbacAuthorizationV1Api(api).create_cluster_role(
            {"metadata": {"name": "secret-reader"}, "rules": [_rule("get", "secrets")]}
        )

    assert denied.value.status == 403
    assert status_of(denied.value)["message"].startswith(
        'clusterroles.rbac.authorization.k8s.io "secret-reader" is forbidden: user "alice"'
    )


def test_role_binding_role_ref_cannot_change(kubesim: KubesimHandle) -> None:
    with kubesim.admin_client() as api:
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role_binding(
            "payments",
            {
                "metadata": {"name": "b"},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "bob"}],
            },
        )
        with pytest.raises(ApiException) as rejected:
            rbac.patch_namespaced_role_binding(
                "b",
                "payments",
                {"roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "edit"}},
            )

    assert rejected.value.status == 422
    assert "roleRef: Invalid value" in status_of(rejected.value)["message"]
    assert "cannot change roleRef" in status_of(rejected.value)["message"]


def test_namespaced_role_cannot_hold_non_resource_urls(kubesim: KubesimHandle) -> None:
    with raw_http(kubesim) as http:
        response = http.post(
            f"/apis/{RBAC}/v1/namespaces/payments/roles",
            json={
                "metadata": {"name": "urls"},
                "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
            },
        )

    assert response.status_code == 422
    assert "namespaced rules cannot apply to non-resource URLs" in response.json()["message"]


def test_watch_is_not_supported(kubesim: KubesimHandle) -> None:
    with raw_http(kubesim) as http:
        response = http.get("/api/v1/namespaces/payments/pods?watch=true")

    assert response.status_code == 405
    assert response.json()["reason"] == "MethodNotAllowed"


def test_impersonation_needs_the_impersonate_verb(kubesim: KubesimHandle, user_token: str) -> None:
    with raw_http(kubesim, user_token) as http:
        response = http.get("/api/v1/namespaces/payments/pods", headers={"Impersonate-User": "bob"})

    assert response.status_code == 403
    assert response.json()["message"] == (
        'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API '
        'group "" at the cluster scope'
    )


def test_admin_impersonating_a_service_account_gets_only_its_permissions(
    kubesim: KubesimHandle, scanner_token: str
) -> None:
    headers = {"Impersonate-User": "system:serviceaccount:scangate-grants:scanner"}
    with raw_http(kubesim) as http:
        allowed = http.get("/api/v1/namespaces/payments/pods/web-0", headers=headers)
        denied = http.get("/api/v1/namespaces/payments/pods/web-1", headers=headers)
        whoami = http.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews", json={}, headers=headers
        )

    assert allowed.status_code == 200
    assert denied.status_code == 403
    assert whoami.json()["status"]["userInfo"]["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:scangate-grants",
        "system:authenticated",
    ]


def test_token_review_reports_the_token_user(kubesim: KubesimHandle, scanner_token: str) -> None:
    with kubesim.admin_client() as api:
        review = client.AuthenticationV1Api(api).create_token_review(
            {"spec": {"token": scanner_token}}
        )
        bogus = client.AuthenticationV1Api(api).create_token_review({"spec": {"token": "nope"}})

    assert review.status.authenticated is True
    assert review.status.user.username == "system:serviceaccount:scangate-grants:scanner"
    assert bogus.status.authenticated is False
