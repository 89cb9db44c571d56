"""Kubernetes RBAC semantics as a table of cases for kubesim's authorizer: each case states a
small world of Roles and bindings, a user and one request, and whether a real kube-apiserver
allows it. `test_rbac_table.py` checks the authorizer against it, `test_rbac_wire.py` drives it
through `kubectl auth can-i` against a running kubesim (so the worlds keep to namespaces the
default seed has: `payments`, `orders`, `scangate-grants`); the helpers build further worlds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesim.rbac import RequestAttributes, UserInfo

RBAC = "rbac.authorization.k8s.io"
GRANTS_NS = "scangate-grants"


# --- the world: plain manifests, as the API stores them ---------------------------------------


class InMemoryRbac:
    """An ``RbacObjects`` over a list of manifests."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self._objects = list(objects)

    def _of_kind(self, kind: str, namespace: str | None = None) -> list[Mapping[str, Any]]:
        return [
            obj
            for obj in self._objects
            if obj["kind"] == kind
            and (namespace is None or obj["metadata"].get("namespace") == namespace)
        ]

    def cluster_roles(self) -> list[Mapping[str, Any]]:
        return self._of_kind("ClusterRole")

    def cluster_role_bindings(self) -> list[Mapping[str, Any]]:
        return self._of_kind("ClusterRoleBinding")

    def roles(self, namespace: str) -> list[Mapping[str, Any]]:
        return self._of_kind("Role", namespace)

    def role_bindings(self, namespace: str) -> list[Mapping[str, Any]]:
        return self._of_kind("RoleBinding", namespace)

    def get_role(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return next((r for r in self.roles(namespace) if r["metadata"]["name"] == name), None)

    def get_cluster_role(self, name: str) -> Mapping[str, Any] | None:
        return next((r for r in self.cluster_roles() if r["metadata"]["name"] == name), None)


def rule(
    verbs: str,
    resources: str = "",
    *,
    groups: str = "",
    names: str = "",
    urls: str = "",
) -> dict[str, Any]:
    """A PolicyRule from space-separated lists: ``rule("get list", "pods", names="web-0")``."""
    out: dict[str, Any] = {"verbs": verbs.split()}
    if resources:
        out["resources"] = resources.split()
        out["apiGroups"] = groups.split() or [""]
    if names:
        out["resourceNames"] = names.split()
    if urls:
        out["nonResourceURLs"] = urls.split()
    return out


def role(namespace: str, name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": list(rules),
    }


def cluster_role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": list(rules),
    }


def user(name: str) -> dict[str, Any]:
    return {"apiGroup": RBAC, "kind": "User", "name": name}


def group(name: str) -> dict[str, Any]:
    return {"apiGroup": RBAC, "kind": "Group", "name": name}


def service_account(name: str, namespace: str | None = None) -> dict[str, Any]:
    subject: dict[str, Any] = {"kind": "ServiceAccount", "name": name}
    if namespace is not None:
        subject["namespace"] = namespace
    return subject


def role_binding(
    namespace: str, name: str, role_ref: str, *subjects: dict[str, Any]
) -> dict[str, Any]:
    """``role_ref`` is ``"Role/NAME"`` or ``"ClusterRole/NAME"``."""
    kind, _, ref_name = role_ref.partition("/")
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": ref_name},
        "subjects": list(subjects),
    }


def cluster_role_binding(
    name: str, cluster_role_name: str, *subjects: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": cluster_role_name},
        "subjects": list(subjects),
    }


def alice_role(*rules: dict[str, Any], namespace: str = "payments") -> tuple[dict[str, Any], ...]:
    """Alice holds ``rules`` through a Role and RoleBinding in ``namespace``."""
    return (
        role(namespace, "alice-role", *rules),
        role_binding(namespace, "alice-role", "Role/alice-role", user("alice")),
    )


def alice_cluster_role(*rules: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Alice holds ``rules`` everywhere through a ClusterRole and ClusterRoleBinding."""
    return (
        cluster_role("alice-cluster-role", *rules),
        cluster_role_binding("alice-cluster-role", "alice-cluster-role", user("alice")),
    )


# --- who asks ----------------------------------------------------------------------------------

AUTHENTICATED = "system:authenticated"
ALICE = UserInfo("alice", (AUTHENTICATED,))
BOB = UserInfo("bob", (AUTHENTICATED, "auditors"))
ADMIN = UserInfo("kubesim-admin", ("system:masters", AUTHENTICATED))


def sa_user(namespace: str, name: str) -> UserInfo:
    """A ServiceAccount as kube-apiserver authenticates it: username and the groups it adds."""
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


SCANNER = sa_user(GRANTS_NS, "scangate-x")


# --- what is asked -----------------------------------------------------------------------------


def ask(
    verb: str,
    resource: str,
    name: str = "",
    *,
    ns: str = "payments",
    group: str = "",
) -> RequestAttributes:
    """A resource request; ``resource`` may be ``"pods/exec"``. ``ns=""`` is cluster scope."""
    resource, _, subresource = resource.partition("/")
    return RequestAttributes(
        verb=verb,
        api_group=group,
        resource=resource,
        subresource=subresource,
        name=name,
        namespace=ns,
    )


def ask_path(verb: str, path: str) -> RequestAttributes:
    return RequestAttributes(verb=verb, path=path, resource_request=False)


@dataclass(frozen=True)
class Case:
    id: str
    world: tuple[dict[str, Any], ...]
    who: UserInfo
    request: RequestAttributes
    allowed: bool
    # False for cases kubectl cannot express (e.g. a resource spelled in capitals).
    over_the_wire: bool = field(default=True)


# The table reads best one case per block; the formatter would spread each over 8 lines.
# fmt: off
CASES: list[Case] = [
    # verbs
    Case("role_grants_listed_verb", alice_role(rule("get", "pods")), ALICE,
         ask("get", "pods", "web-0"), True),
    Case("role_denies_unlisted_verb", alice_role(rule("get", "pods")), ALICE,
         ask("delete", "pods", "web-0"), False),
    Case("verb_wildcard_grants_every_verb", alice_role(rule("*", "pods")), ALICE,
         ask("deletecollection", "pods"), True),
    Case("update_does_not_imply_patch", alice_role(rule("update", "deployments", groups="apps")),
         ALICE, ask("patch", "deployments", "web", group="apps"), False),
    Case("list_does_not_imply_watch", alice_role(rule("list", "pods")), ALICE,
         ask("watch", "pods"), False),
    # API groups
    Case("core_group_rule_does_not_match_apps_group", alice_role(rule("get", "deployments")),
         ALICE, ask("get", "deployments", "web", group="apps"), False),
    Case("named_api_group_matches", alice_role(rule("get", "deployments", groups="apps")),
         ALICE, ask("get", "deployments", "web", group="apps"), True),
    Case("api_group_wildcard_matches_any_group",
         alice_role(rule("get", "deployments", groups="*")), ALICE,
         ask("get", "deployments", "web", group="apps"), True),
    Case("resource_wildcard_stays_within_its_group",
         alice_role(rule("get", "*", groups="apps")), ALICE, ask("get", "pods", "web-0"), False),
    # resources and subresources
    Case("resource_wildcard_matches_every_resource", alice_role(rule("get", "*")), ALICE,
         ask("get", "secrets", "db-credentials"), True),
    Case("resource_wildcard_matches_subresources", alice_role(rule("create", "*")), ALICE,
         ask("create", "pods/exec", "web-0"), True),
    Case("resource_rule_does_not_grant_its_subresources", alice_role(rule("*", "pods")), ALICE,
         ask("create", "pods/exec", "web-0"), False),
    Case("subresource_rule_does_not_grant_parent_resource", alice_role(rule("get", "pods/log")),
         ALICE, ask("get", "pods", "web-0"), False),
    Case("exact_subresource_rule_grants_it", alice_role(rule("create", "pods/exec")), ALICE,
         ask("create", "pods/exec", "web-0"), True),
    Case("subresource_rule_does_not_grant_sibling_subresource",
         alice_role(rule("create", "pods/exec")), ALICE, ask("create", "pods/attach", "web-0"),
         False),
    Case("star_slash_subresource_matches_any_resource", alice_role(rule("get", "*/log")), ALICE,
         ask("get", "pods/log", "web-0"), True),
    Case("star_slash_subresource_does_not_match_other_subresource",
         alice_role(rule("get", "*/log")), ALICE, ask("get", "pods/exec", "web-0"), False),
    Case("star_slash_subresource_does_not_match_parent_resource",
         alice_role(rule("get", "*/log")), ALICE, ask("get", "pods", "web-0"), False),
    # Upstream ResourceMatches has no "resource/*" form: such a rule grants no subresource.
    Case("pods_slash_star_is_not_a_wildcard", alice_role(rule("create get", "pods/*")), ALICE,
         ask("create", "pods/exec", "web-0"), False),
    Case("resources_are_case_sensitive", alice_role(rule("get", "Pods")), ALICE,
         ask("get", "pods", "web-0"), False, over_the_wire=False),
    # resourceNames
    Case("resource_names_allow_named_object", alice_role(rule("get", "pods", names="web-0")),
         ALICE, ask("get", "pods", "web-0"), True),
    Case("resource_names_deny_other_object", alice_role(rule("get", "pods", names="web-0")),
         ALICE, ask("get", "pods", "web-1"), False),
    Case("resource_names_never_match_list", alice_role(rule("list", "pods", names="web-0")),
         ALICE, ask("list", "pods"), False),
    Case("resource_names_never_match_create", alice_role(rule("create", "pods", names="web-0")),
         ALICE, ask("create", "pods"), False),
    Case("resource_names_never_match_deletecollection",
         alice_role(rule("deletecollection", "pods", names="web-0")), ALICE,
         ask("deletecollection", "pods"), False),
    Case("resource_name_star_is_literal", alice_role(rule("get", "pods", names="*")), ALICE,
         ask("get", "pods", "web-0"), False),
    Case("resource_names_restrict_subresource",
         alice_role(rule("create", "pods/exec", names="web-0")), ALICE,
         ask("create", "pods/exec", "web-0"), True),
    Case("resource_names_deny_subresource_of_other_pod",
         alice_role(rule("create", "pods/exec", names="web-0")), ALICE,
         ask("create", "pods/exec", "web-1"), False),
    Case("rules_are_additive_unnamed_list_beside_named_get",
         alice_role(rule("get", "pods", names="web-0"), rule("list", "pods")), ALICE,
         ask("list", "pods"), True),
    # namespace scoping
    Case("role_binding_grants_only_in_its_namespace", alice_role(rule("get", "pods")), ALICE,
         ask("get", "pods", "api-0", ns="orders"), False),
    Case("role_binding_does_not_grant_at_cluster_scope", alice_role(rule("list", "pods")),
         ALICE, ask("list", "pods", ns=""), False),
    Case("role_binding_to_cluster_role_grants_in_binding_namespace",
         (cluster_role("pod-reader", rule("get list", "pods")),
          role_binding("payments", "read-pods", "ClusterRole/pod-reader", user("alice"))),
         ALICE, ask("get", "pods", "web-0"), True),
    Case("role_binding_to_cluster_role_does_not_grant_other_namespaces",
         (cluster_role("pod-reader", rule("get list", "pods")),
          role_binding("payments", "read-pods", "ClusterRole/pod-reader", user("alice"))),
         ALICE, ask("get", "pods", "api-0", ns="orders"), False),
    Case("role_binding_to_cluster_role_does_not_grant_cluster_scope",
         (cluster_role("ns-reader", rule("get list", "namespaces")),
          role_binding("payments", "read-ns", "ClusterRole/ns-reader", user("alice"))),
         ALICE, ask("list", "namespaces", ns=""), False),
    Case("role_binding_uses_role_of_its_own_namespace",
         (role("orders", "reader", rule("get", "pods")),
          role_binding("payments", "reader", "Role/reader", user("alice"))),
         ALICE, ask("get", "pods", "web-0"), False),
    Case("binding_to_missing_role_grants_nothing",
         (role_binding("payments", "dangling", "Role/not-there", user("alice")),), ALICE,
         ask("get", "pods", "web-0"), False),
    Case("cluster_role_binding_grants_in_every_namespace", alice_cluster_role(rule("get", "pods")),
         ALICE, ask("get", "pods", "api-0", ns="orders"), True),
    Case("cluster_role_binding_grants_at_cluster_scope", alice_cluster_role(rule("list", "pods")),
         ALICE, ask("list", "pods", ns=""), True),
    Case("cluster_role_binding_grants_cluster_scoped_resources",
         alice_cluster_role(rule("list", "namespaces")), ALICE, ask("list", "namespaces", ns=""),
         True),
    # subjects
    Case("user_subject_matches_exact_name", alice_role(rule("get", "pods")), ALICE,
         ask("get", "pods", "web-0"), True),
    Case("user_subject_does_not_match_other_user", alice_role(rule("get", "pods")), BOB,
         ask("get", "pods", "web-0"), False),
    Case("group_subject_matches_member",
         (role("payments", "audit", rule("get", "pods")),
          role_binding("payments", "audit", "Role/audit", group("auditors"))),
         BOB, ask("get", "pods", "web-0"), True),
    Case("group_subject_does_not_match_non_member",
         (role("payments", "audit", rule("get", "pods")),
          role_binding("payments", "audit", "Role/audit", group("auditors"))),
         ALICE, ask("get", "pods", "web-0"), False),
    Case("any_subject_of_a_binding_suffices",
         (role("payments", "audit", rule("get", "pods")),
          role_binding("payments", "audit", "Role/audit", user("carol"), group("auditors"))),
         BOB, ask("get", "pods", "web-0"), True),
    Case("service_account_subject_from_other_namespace_matches",
         (role("payments", "scan", rule("get", "pods", names="web-0")),
          role_binding("payments", "scan", "Role/scan", service_account("scangate-x", GRANTS_NS))),
         SCANNER, ask("get", "pods", "web-0"), True),
    Case("service_account_subject_namespace_must_match",
         (role("payments", "scan", rule("get", "pods")),
          role_binding("payments", "scan", "Role/scan", service_account("scangate-x", "orders"))),
         SCANNER, ask("get", "pods", "web-0"), False),
    Case("service_account_subject_without_namespace_means_binding_namespace",
         (role("payments", "ci", rule("get", "pods")),
          role_binding("payments", "ci", "Role/ci", service_account("ci"))),
         sa_user("payments", "ci"), ask("get", "pods", "web-0"), True),
    Case("service_account_subject_without_namespace_is_not_another_namespace",
         (role("payments", "ci", rule("get", "pods")),
          role_binding("payments", "ci", "Role/ci", service_account("ci"))),
         sa_user("orders", "ci"), ask("get", "pods", "web-0"), False),
    Case("cluster_binding_service_account_without_namespace_matches_nobody",
         (cluster_role("pod-reader", rule("get", "pods")),
          cluster_role_binding("ci", "pod-reader", service_account("ci"))),
         sa_user("payments", "ci"), ask("get", "pods", "web-0"), False),
    Case("user_subject_named_like_service_account_matches_it",
         (role("payments", "scan", rule("get", "pods")),
          role_binding("payments", "scan", "Role/scan",
                       user(f"system:serviceaccount:{GRANTS_NS}:scangate-x"))),
         SCANNER, ask("get", "pods", "web-0"), True),
    Case("group_system_serviceaccounts_matches_every_service_account",
         (cluster_role("pod-reader", rule("get", "pods")),
          role_binding("payments", "all-sas", "ClusterRole/pod-reader",
                       group("system:serviceaccounts"))),
         SCANNER, ask("get", "pods", "web-0"), True),
    Case("group_system_serviceaccounts_does_not_match_users",
         (cluster_role("pod-reader", rule("get", "pods")),
          role_binding("payments", "all-sas", "ClusterRole/pod-reader",
                       group("system:serviceaccounts"))),
         ALICE, ask("get", "pods", "web-0"), False),
    Case("group_namespace_serviceaccounts_matches_that_namespace",
         (cluster_role("pod-reader", rule("get", "pods")),
          role_binding("payments", "grant-sas", "ClusterRole/pod-reader",
                       group(f"system:serviceaccounts:{GRANTS_NS}"))),
         SCANNER, ask("get", "pods", "web-0"), True),
    Case("group_namespace_serviceaccounts_does_not_match_other_namespace",
         (cluster_role("pod-reader", rule("get", "pods")),
          role_binding("payments", "order-sas", "ClusterRole/pod-reader",
                       group("system:serviceaccounts:orders"))),
         SCANNER, ask("get", "pods", "web-0"), False),
    Case("group_system_authenticated_matches_every_user",
         (cluster_role("pod-lister", rule("list", "pods")),
          cluster_role_binding("everyone", "pod-lister", group(AUTHENTICATED))),
         BOB, ask("list", "pods", ns="orders"), True),
    # nonResourceURLs
    Case("non_resource_url_exact_match",
         alice_cluster_role(rule("get", urls="/metrics")), ALICE, ask_path("get", "/metrics"),
         True),
    Case("non_resource_url_verb_must_match",
         alice_cluster_role(rule("get", urls="/metrics")), ALICE, ask_path("post", "/metrics"),
         False),
    Case("non_resource_url_trailing_star_is_prefix_match",
         alice_cluster_role(rule("get", urls="/healthz/*")), ALICE,
         ask_path("get", "/healthz/etcd"), True),
    Case("non_resource_url_star_prefix_excludes_shorter_path",
         alice_cluster_role(rule("get", urls="/healthz/*")), ALICE, ask_path("get", "/healthz"),
         False),
    Case("non_resource_url_star_only_wildcards_at_the_end",
         alice_cluster_role(rule("get", urls="/logs/*/audit")), ALICE,
         ask_path("get", "/logs/kube/audit"), False),
    Case("non_resource_url_bare_star_matches_every_path",
         alice_cluster_role(rule("get", urls="*")), ALICE, ask_path("get", "/version"), True),
    Case("non_resource_url_via_role_binding_is_not_honoured",
         (cluster_role("scraper", rule("get", urls="/metrics")),
          role_binding("payments", "scraper", "ClusterRole/scraper", user("alice"))),
         ALICE, ask_path("get", "/metrics"), False),
    # Paths have no namespace upstream; even if one is passed, RoleBindings must not count.
    Case("non_resource_request_ignores_role_bindings_even_with_a_namespace",
         (cluster_role("scraper", rule("get", urls="/metrics")),
          role_binding("payments", "scraper", "ClusterRole/scraper", user("alice"))),
         ALICE, RequestAttributes(verb="get", path="/metrics", namespace="payments",
                                  resource_request=False), False, over_the_wire=False),
    Case("resource_wildcards_do_not_grant_non_resource_urls",
         alice_cluster_role(rule("*", "*", groups="*")), ALICE, ask_path("get", "/metrics"),
         False),
    # system:masters
    Case("system_masters_allowed_without_any_binding", (), ADMIN,
         ask("delete", "secrets", "db-credentials"), True),
    Case("system_masters_allowed_non_resource_urls", (), ADMIN, ask_path("get", "/metrics"),
         True),
    Case("user_named_system_masters_is_not_the_group", (),
         UserInfo("system:masters", (AUTHENTICATED,)), ask("get", "pods", "web-0"), False,
         over_the_wire=False),
    Case("no_bindings_means_denied", (), ALICE, ask("get", "pods", "web-0"), False),
]
# fmt: on
