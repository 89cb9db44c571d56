"""What kubesim's RBAC tells clients: 403 messages, decision reasons, SelfSubjectRulesReview rules.

kubectl prints these strings verbatim and scangate maps them to its own errors, so they must
read exactly as a real kube-apiserver's.
"""

from __future__ import annotations

import pytest

from kubesim.rbac import Authorizer, Decision, RequestAttributes, UserInfo, forbidden_message
from kubesim.rbac_bootstrap import bootstrap_objects
from tests.support.rbac_cases import (
    ADMIN,
    ALICE,
    AUTHENTICATED,
    GRANTS_NS,
    SCANNER,
    InMemoryRbac,
    alice_role,
    ask,
    ask_path,
    cluster_role,
    cluster_role_binding,
    group,
    role,
    role_binding,
    rule,
    service_account,
    user,
)


@pytest.mark.parametrize(
    ("who", "request_", "message"),
    [
        pytest.param(
            SCANNER,
            ask("get", "pods", "web-0"),
            'pods "web-0" is forbidden: User "system:serviceaccount:scangate-grants:scangate-x"'
            ' cannot get resource "pods" in API group "" in the namespace "payments"',
            id="named_object_in_namespace",
        ),
        pytest.param(
            ALICE,
            ask("create", "pods/exec", "web-0"),
            'pods "web-0" is forbidden: User "alice" cannot create resource "pods/exec"'
            ' in API group "" in the namespace "payments"',
            id="subresource_names_resource_and_subresource",
        ),
        pytest.param(
            ALICE,
            ask("list", "pods"),
            'pods is forbidden: User "alice" cannot list resource "pods" in API group ""'
            ' in the namespace "payments"',
            id="collection_without_name",
        ),
        pytest.param(
            ALICE,
            ask("list", "namespaces", ns=""),
            'namespaces is forbidden: User "alice" cannot list resource "namespaces"'
            ' in API group "" at the cluster scope',
            id="cluster_scope",
        ),
        pytest.param(
            ALICE,
            ask("create", "roles", ns="payments", group="rbac.authorization.k8s.io"),
            'roles.rbac.authorization.k8s.io is forbidden: User "alice" cannot create resource'
            ' "roles" in API group "rbac.authorization.k8s.io" in the namespace "payments"',
            id="group_qualified_resource",
        ),
        pytest.param(
            ALICE,
            ask_path("get", "/metrics"),
            'forbidden: User "alice" cannot get path "/metrics"',
            id="non_resource_path",
        ),
    ],
)
def test_forbidden_message_matches_kube_apiserver(
    who: UserInfo, request_: RequestAttributes, message: str
) -> None:
    assert forbidden_message(who, request_) == message


def test_denial_names_the_missing_role_of_the_users_binding() -> None:
    world = (role_binding("payments", "dangling", "Role/not-there", user("alice")),)
    request_ = ask("get", "pods", "web-0")

    decision = Authorizer(InMemoryRbac(world)).authorize(ALICE, request_)

    assert decision.reason == 'RBAC: role.rbac.authorization.k8s.io "not-there" not found'
    assert forbidden_message(ALICE, request_, decision.reason) == (
        'pods "web-0" is forbidden: User "alice" cannot get resource "pods" in API group ""'
        ' in the namespace "payments": RBAC: role.rbac.authorization.k8s.io "not-there" not found'
    )


def test_plain_denial_has_no_reason() -> None:
    world = (role_binding("payments", "dangling", "Role/not-there", user("bob")),)

    decision = Authorizer(InMemoryRbac(world)).authorize(ALICE, ask("get", "pods", "web-0"))

    assert decision == Decision(False, "")


def test_allow_reason_names_role_binding_role_and_subject() -> None:
    world = (
        role("payments", "scan", rule("get", "pods")),
        role_binding("payments", "scan", "Role/scan", service_account("scangate-x", GRANTS_NS)),
    )

    decision = Authorizer(InMemoryRbac(world)).authorize(SCANNER, ask("get", "pods", "web-0"))

    assert decision.reason == (
        'RBAC: allowed by RoleBinding "scan/payments" of Role "scan"'
        ' to ServiceAccount "scangate-x/scangate-grants"'
    )


def test_allow_reason_names_cluster_role_binding() -> None:
    world = (
        cluster_role("pod-lister", rule("list", "pods")),
        cluster_role_binding("everyone", "pod-lister", group(AUTHENTICATED)),
    )

    decision = Authorizer(InMemoryRbac(world)).authorize(ALICE, ask("list", "pods"))

    assert decision.reason == (
        'RBAC: allowed by ClusterRoleBinding "everyone" of ClusterRole "pod-lister"'
        ' to Group "system:authenticated"'
    )


# --- SelfSubjectRulesReview ---------------------------------------------------------------


def test_rules_for_lists_rules_reaching_user_in_namespace() -> None:
    world = (
        *alice_role(rule("get", "pods", names="web-0"), rule("create", "pods/exec")),
        *alice_role(rule("delete", "secrets"), namespace="orders"),
        cluster_role("metrics", rule("get", urls="/metrics /healthz/*")),
        cluster_role_binding("metrics", "metrics", group(AUTHENTICATED)),
    )

    resource_rules, non_resource_rules = Authorizer(InMemoryRbac(world)).rules_for(
        ALICE, "payments"
    )

    assert resource_rules == [
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["web-0"]},
        {"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]},
    ]
    assert non_resource_rules == [{"verbs": ["get"], "nonResourceURLs": ["/metrics", "/healthz/*"]}]


def test_rules_for_nobody_is_empty() -> None:
    assert Authorizer(InMemoryRbac(())).rules_for(ALICE, "payments") == ([], [])


# --- bootstrap policy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "request_", "allowed"),
    [
        pytest.param(
            ALICE,
            ask("create", "selfsubjectaccessreviews", ns="", group="authorization.k8s.io"),
            True,
            id="any_user_may_ask_can_i",
        ),
        pytest.param(
            SCANNER,
            ask("create", "selfsubjectrulesreviews", ns="", group="authorization.k8s.io"),
            True,
            id="service_account_may_list_its_rules",
        ),
        pytest.param(SCANNER, ask_path("get", "/apis/apps/v1"), True, id="discovery"),
        pytest.param(ALICE, ask_path("get", "/version"), True, id="version"),
        pytest.param(
            UserInfo("system:anonymous", ("system:unauthenticated",)),
            ask_path("get", "/healthz"),
            True,
            id="anonymous_health",
        ),
        pytest.param(
            UserInfo("system:anonymous", ("system:unauthenticated",)),
            ask_path("get", "/api"),
            False,
            id="anonymous_no_discovery",
        ),
        pytest.param(ALICE, ask("list", "pods"), False, id="no_resource_access"),
        pytest.param(ALICE, ask_path("get", "/metrics"), False, id="no_metrics"),
    ],
)
def test_bootstrap_policy_grants_what_every_cluster_grants(
    who: UserInfo, request_: RequestAttributes, allowed: bool
) -> None:
    authorizer = Authorizer(InMemoryRbac(bootstrap_objects()))

    assert authorizer.authorize(who, request_).allowed is allowed


def test_bootstrap_policy_reports_cluster_admin_rules_for_system_masters() -> None:
    resource_rules, non_resource_rules = Authorizer(InMemoryRbac(bootstrap_objects())).rules_for(
        ADMIN, "payments"
    )

    assert {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]} in resource_rules
    assert {"verbs": ["*"], "nonResourceURLs": ["*"]} in non_resource_rules
