"""Privilege-escalation prevention: who may write which Roles and bindings.

Kubernetes lets a user create a Role only if they already hold every permission in it (or have
``escalate``), and a binding only if they hold the referenced role's permissions where the
binding grants them (or have ``bind`` on that role). Scangate's whole provisioning path rests on
this: its Helm chart grants exactly the scanner-profile permissions, so it can create grant
Roles for those and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kubesim.rbac import Authorizer, Decision, UserInfo, denial_detail
from tests.support.rbac_cases import (
    ADMIN,
    ALICE,
    GRANTS_NS,
    RBAC,
    InMemoryRbac,
    alice_cluster_role,
    alice_role,
    cluster_role,
    cluster_role_binding,
    role,
    role_binding,
    rule,
    sa_user,
    service_account,
    user,
)

SCANGATE = sa_user("scangate-system", "scangate")

# What the Helm chart gives scangate in each target namespace: the union of the scanner
# profiles (unrestricted by name, since pods are only known per grant) plus the right to manage
# Roles and RoleBindings. No bind, no escalate.
SCANGATE_TARGET_PERMISSIONS = (
    cluster_role(
        "scangate-target",
        rule("get", "pods"),
        rule("create get", "pods/exec"),
        rule("get", "pods/log"),
        rule("create get list delete", "roles rolebindings", groups=RBAC),
    ),
    role_binding(
        "payments",
        "scangate",
        "ClusterRole/scangate-target",
        service_account("scangate", "scangate-system"),
    ),
)

EXEC_PROFILE = (
    rule("get", "pods", names="web-0 web-1"),
    rule("create get", "pods/exec", names="web-0 web-1"),
    rule("get", "pods/log", names="web-0 web-1"),
)


@dataclass(frozen=True)
class RoleCase:
    id: str
    world: tuple[dict[str, Any], ...]
    who: UserInfo
    namespace: str | None  # None: a ClusterRole
    rules: tuple[dict[str, Any], ...]
    allowed: bool
    name: str = ""  # the role's name on update; "" on create


# fmt: off
ROLE_CASES: list[RoleCase] = [
    RoleCase("holder_of_every_permission_may_create_role",
             alice_role(rule("get list", "pods")), ALICE, "payments",
             (rule("get", "pods"),), True),
    RoleCase("missing_verb_is_escalation", alice_role(rule("get", "pods")), ALICE, "payments",
             (rule("get delete", "pods"),), False),
    RoleCase("permissions_in_other_namespace_do_not_count",
             alice_role(rule("get", "pods"), namespace="orders"), ALICE, "payments",
             (rule("get", "pods"),), False),
    RoleCase("cluster_role_binding_permissions_count_in_every_namespace",
             alice_cluster_role(rule("get", "pods")), ALICE, "orders",
             (rule("get", "pods"),), True),
    RoleCase("name_restricted_permission_cannot_grant_every_name",
             alice_role(rule("get", "pods", names="web-0")), ALICE, "payments",
             (rule("get", "pods"),), False),
    RoleCase("unrestricted_permission_covers_named_grant",
             alice_role(rule("get", "pods")), ALICE, "payments",
             (rule("get", "pods", names="web-0"),), True),
    RoleCase("name_restricted_permission_covers_subset_of_names",
             alice_role(rule("get", "pods", names="web-0 web-1")), ALICE, "payments",
             (rule("get", "pods", names="web-0"),), True),
    RoleCase("name_restricted_permission_does_not_cover_other_names",
             alice_role(rule("get", "pods", names="web-0 web-1")), ALICE, "payments",
             (rule("get", "pods", names="web-0 web-2"),), False),
    RoleCase("star_slash_subresource_covers_that_subresource",
             alice_role(rule("get", "*/log")), ALICE, "payments",
             (rule("get", "pods/log"),), True),
    RoleCase("resource_does_not_cover_its_subresources",
             alice_role(rule("*", "pods")), ALICE, "payments",
             (rule("create", "pods/exec"),), False),
    RoleCase("resource_wildcard_covers_subresources",
             alice_role(rule("create", "*")), ALICE, "payments",
             (rule("create", "pods/exec"),), True),
    RoleCase("pods_slash_star_is_only_covered_literally",
             alice_role(rule("create", "pods/*")), ALICE, "payments",
             (rule("create", "pods/*"),), True),
    RoleCase("granting_verb_wildcard_needs_held_wildcard",
             alice_role(rule("get list watch create update patch delete deletecollection",
                             "pods")),
             ALICE, "payments", (rule("*", "pods"),), False),
    RoleCase("granting_group_wildcard_needs_held_wildcard",
             alice_role(rule("get", "deployments", groups="apps extensions")),
             ALICE, "payments", (rule("get", "deployments", groups="*"),), False),
    RoleCase("non_resource_url_covered_by_held_prefix",
             alice_cluster_role(rule("get", urls="/healthz/*")), ALICE, None,
             (rule("get", urls="/healthz/etcd"),), True),
    RoleCase("non_resource_url_not_held_is_escalation",
             alice_cluster_role(rule("get", urls="/healthz/*")), ALICE, None,
             (rule("get", urls="/metrics"),), False),
    RoleCase("namespace_permissions_do_not_cover_a_cluster_role",
             alice_role(rule("get", "pods")), ALICE, None, (rule("get", "pods"),), False),
    RoleCase("escalate_on_roles_allows_any_role_in_that_namespace",
             alice_role(rule("escalate", "roles", groups=RBAC)), ALICE, "payments",
             (rule("*", "secrets"),), True),
    RoleCase("escalate_in_other_namespace_does_not_help",
             alice_role(rule("escalate", "roles", groups=RBAC), namespace="orders"), ALICE,
             "payments", (rule("*", "secrets"),), False),
    RoleCase("escalate_on_clusterroles_allows_any_cluster_role",
             alice_cluster_role(rule("escalate", "clusterroles", groups=RBAC)), ALICE, None,
             (rule("*", "*", groups="*"),), True),
    RoleCase("escalate_on_roles_does_not_cover_cluster_roles",
             alice_cluster_role(rule("escalate", "roles", groups=RBAC)), ALICE, None,
             (rule("get", "secrets"),), False),
    RoleCase("escalate_restricted_by_name_allows_updating_that_role",
             alice_role(rule("escalate", "roles", groups=RBAC, names="team")), ALICE,
             "payments", (rule("*", "secrets"),), True, name="team"),
    # Upstream authorizes escalate with the request's name, and a create has none.
    RoleCase("escalate_restricted_by_name_does_not_allow_creating",
             alice_role(rule("escalate", "roles", groups=RBAC, names="team")), ALICE,
             "payments", (rule("*", "secrets"),), False),
    RoleCase("system_masters_may_grant_anything", (), ADMIN, None,
             (rule("*", "*", groups="*"), rule("*", urls="*")), True),
    RoleCase("scangate_may_create_exec_profile_role", SCANGATE_TARGET_PERMISSIONS, SCANGATE,
             "payments", EXEC_PROFILE, True),
    RoleCase("scangate_may_not_create_debug_profile_role_without_its_permissions",
             SCANGATE_TARGET_PERMISSIONS, SCANGATE, "payments",
             (*EXEC_PROFILE, rule("patch update", "pods/ephemeralcontainers", names="web-0")),
             False),
    RoleCase("scangate_may_not_create_grant_role_in_namespace_it_does_not_serve",
             SCANGATE_TARGET_PERMISSIONS, SCANGATE, "orders", EXEC_PROFILE, False),
]
# fmt: on


@pytest.mark.parametrize("case", ROLE_CASES, ids=[case.id for case in ROLE_CASES])
def test_role_escalation(case: RoleCase) -> None:
    authorizer = Authorizer(InMemoryRbac(case.world))

    decision = authorizer.check_role_escalation(
        case.who, case.namespace, case.rules, name=case.name
    )

    assert decision.allowed is case.allowed, decision.reason


def test_escalation_refusal_lists_exactly_the_missing_permissions() -> None:
    world = alice_role(rule("get", "pods", names="web-0"), rule("list", "pods"))
    authorizer = Authorizer(InMemoryRbac(world))

    decision = authorizer.check_role_escalation(
        ALICE,
        "payments",
        [rule("get list delete", "pods"), rule("get", "pods", names="web-0 web-1")],
    )

    assert not decision.allowed
    assert decision.reason == (
        'user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions'
        " not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], ResourceNames:["web-1"], Verbs:["get"]}\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["get" "delete"]}'
    )


# --- bindings ------------------------------------------------------------------------------

POWERFUL = role("payments", "powerful", rule("*", "secrets"))


def binding_to(role_ref: str, namespace: str | None = "payments") -> dict[str, Any]:
    subject = service_account("scangate-x", GRANTS_NS)
    if namespace is None:
        _, _, name = role_ref.partition("/")
        return cluster_role_binding("new-binding", name, subject)
    return role_binding(namespace, "new-binding", role_ref, subject)


@dataclass(frozen=True)
class BindingCase:
    id: str
    world: tuple[dict[str, Any], ...]
    who: UserInfo
    binding: dict[str, Any]
    namespace: str | None  # None: a ClusterRoleBinding
    allowed: bool


READER = cluster_role("pod-reader", rule("get list", "pods"))
ALICE_READS_PAYMENTS = (
    READER,
    role_binding("payments", "alice-reads", "ClusterRole/pod-reader", user("alice")),
)

# fmt: off
BINDING_CASES: list[BindingCase] = [
    BindingCase("holder_of_role_permissions_may_bind_it",
                (*alice_role(rule("get", "pods")),
                 role("payments", "scan", rule("get", "pods", names="web-0"))),
                ALICE, binding_to("Role/scan"), "payments", True),
    BindingCase("lacking_role_permissions_may_not_bind_it",
                (*alice_role(rule("get", "pods")), POWERFUL),
                ALICE, binding_to("Role/powerful"), "payments", False),
    BindingCase("bind_on_the_named_role_allows_binding_it",
                (*alice_role(rule("bind", "roles", groups=RBAC, names="powerful")), POWERFUL),
                ALICE, binding_to("Role/powerful"), "payments", True),
    BindingCase("bind_allows_binding_a_role_that_does_not_exist_yet",
                alice_role(rule("bind", "roles", groups=RBAC)),
                ALICE, binding_to("Role/later"), "payments", True),
    BindingCase("bind_on_another_role_name_does_not_help",
                (*alice_role(rule("bind", "roles", groups=RBAC, names="other")), POWERFUL),
                ALICE, binding_to("Role/powerful"), "payments", False),
    BindingCase("bind_on_roles_does_not_cover_cluster_roles",
                (*alice_role(rule("bind", "roles", groups=RBAC)), READER),
                ALICE, binding_to("ClusterRole/pod-reader"), "payments", False),
    BindingCase("role_binding_to_cluster_role_needs_its_permissions_in_that_namespace_only",
                ALICE_READS_PAYMENTS, ALICE, binding_to("ClusterRole/pod-reader"), "payments",
                True),
    BindingCase("role_binding_to_cluster_role_elsewhere_needs_permissions_there",
                ALICE_READS_PAYMENTS, ALICE, binding_to("ClusterRole/pod-reader", "orders"),
                "orders", False),
    BindingCase("cluster_role_binding_needs_cluster_wide_permissions",
                ALICE_READS_PAYMENTS, ALICE, binding_to("ClusterRole/pod-reader", None), None,
                False),
    BindingCase("cluster_role_binding_by_cluster_wide_holder",
                (*alice_cluster_role(rule("get list watch", "pods")), READER),
                ALICE, binding_to("ClusterRole/pod-reader", None), None, True),
    BindingCase("bind_on_cluster_role_via_role_binding_delegates_in_that_namespace",
                (*alice_role(rule("bind", "clusterroles", groups=RBAC, names="pod-reader")),
                 READER),
                ALICE, binding_to("ClusterRole/pod-reader"), "payments", True),
    BindingCase("bind_via_role_binding_does_not_allow_cluster_role_binding",
                (*alice_role(rule("bind", "clusterroles", groups=RBAC, names="pod-reader")),
                 READER),
                ALICE, binding_to("ClusterRole/pod-reader", None), None, False),
    BindingCase("system_masters_may_bind_anything_even_missing_roles", (), ADMIN,
                binding_to("ClusterRole/not-there", None), None, True),
    BindingCase("scangate_may_bind_its_grant_role",
                (*SCANGATE_TARGET_PERMISSIONS, role("payments", "scangate-x", *EXEC_PROFILE)),
                SCANGATE, binding_to("Role/scangate-x"), "payments", True),
]
# fmt: on


@pytest.mark.parametrize("case", BINDING_CASES, ids=[case.id for case in BINDING_CASES])
def test_binding_escalation(case: BindingCase) -> None:
    authorizer = Authorizer(InMemoryRbac(case.world))

    decision = authorizer.check_binding(case.who, case.binding, case.namespace)

    assert decision.allowed is case.allowed, decision.reason


@pytest.mark.parametrize(
    ("role_ref", "namespace", "reason", "detail"),
    [
        pytest.param(
            "Role/scangate-x",
            "payments",
            "notfound:Role:scangate-x",
            'roles.rbac.authorization.k8s.io "scangate-x" not found',
            id="role",
        ),
        pytest.param(
            "ClusterRole/not-there",
            None,
            "notfound:ClusterRole:not-there",
            'clusterroles.rbac.authorization.k8s.io "not-there" not found',
            id="cluster_role",
        ),
    ],
)
def test_binding_without_bind_to_missing_role_is_refused_as_not_found(
    role_ref: str, namespace: str | None, reason: str, detail: str
) -> None:
    # scangate has no bind, so the API server looks the Role up and it must exist
    # before the RoleBinding; holding every other verb on everything does not help.
    world = alice_cluster_role(rule("get list create update patch delete", "*", groups="*"))
    authorizer = Authorizer(InMemoryRbac(world))

    decision = authorizer.check_binding(ALICE, binding_to(role_ref, namespace), namespace)

    assert decision == Decision(False, reason)
    assert denial_detail(decision.reason) == detail


def test_binding_refusal_names_the_missing_permissions() -> None:
    authorizer = Authorizer(InMemoryRbac((*alice_role(rule("get", "pods")), POWERFUL)))

    decision = authorizer.check_binding(ALICE, binding_to("Role/powerful"), "payments")

    assert decision.reason.endswith(
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["secrets"], Verbs:["*"]}'
    )
    assert denial_detail(decision.reason) == decision.reason
