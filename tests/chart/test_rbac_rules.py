"""The chart's RBAC, read from rendered releases: exactly what scangate needs, nothing more.

scangate must hold every rule it puts into a grant Role (RBAC escalation prevention), so its
target-namespace rules are the README profile table, unrestricted by pod name, plus what the
grant lifecycle needs. Anything else (secrets, wildcards, escalate/bind/impersonate, cluster-wide
rights without `targetNamespaces: ["*"]`) is a test failure.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.kube.profiles import profile_rules
from tests.chart.helm_runner import Release
from tests.support.chart import InstallScangateChart

Permission = tuple[str, str, str]  # (apiGroup, resource, verb)

# The README, "Scanner profiles" (apiGroup "").
DESIGN_PROFILES: dict[str, set[tuple[str, str]]] = {
    "exec": {("pods", "get"), ("pods/exec", "create"), ("pods/exec", "get"), ("pods/log", "get")},
    "debug": {
        ("pods", "get"),
        ("pods/ephemeralcontainers", "patch"),
        ("pods/ephemeralcontainers", "update"),
        ("pods/attach", "create"),
        ("pods/attach", "get"),
        ("pods/exec", "create"),
        ("pods/exec", "get"),
        ("pods/log", "get"),
    },
    "sidecar": {("pods", "get"), ("pods/log", "get")},
}
LIFECYCLE_IN_TARGETS: set[Permission] = {
    ("", "namespaces", "get"),
    ("", "pods", "get"),
    ("", "pods", "list"),
    *{
        ("rbac.authorization.k8s.io", resource, verb)
        for resource in ("roles", "rolebindings")
        for verb in ("create", "get", "list", "delete")
    },
}
GRANTS_NAMESPACE_RULES = [
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts"],
        "verbs": ["create", "get", "list", "delete"],
    },
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
]
DANGEROUS_VERBS = {"escalate", "bind", "impersonate", "*", "deletecollection", "watch"}
SCANNER_SETS = [["exec"], ["debug"], ["sidecar"], ["exec", "debug", "sidecar"]]


def permissions(rules: list[dict[str, Any]]) -> set[Permission]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def expected_target_permissions(scanners: list[str]) -> set[Permission]:
    profile = {("", resource, verb) for s in scanners for resource, verb in DESIGN_PROFILES[s]}
    return LIFECYCLE_IN_TARGETS | profile


def all_rules(release: Release) -> list[dict[str, Any]]:
    return [
        rule
        for kind in ("Role", "ClusterRole")
        for r in release.of_kind(kind)
        for rule in r["rules"]
    ]


@pytest.mark.parametrize("scanners", SCANNER_SETS, ids="+".join)
def test_target_roles_hold_exactly_the_lifecycle_and_enabled_profile_rules(
    install_scangate_chart: InstallScangateChart, scanners: list[str]
) -> None:
    release = install_scangate_chart(
        {"scanners": scanners, "targetNamespaces": ["payments", "orders"]}
    ).release
    targets = [
        r for r in release.of_kind("Role") if r["metadata"]["namespace"] != "scangate-grants"
    ]
    assert sorted(r["metadata"]["namespace"] for r in targets) == ["orders", "payments"]
    for role in targets:
        assert permissions(role["rules"]) == expected_target_permissions(scanners)


@pytest.mark.parametrize("scanners", SCANNER_SETS, ids="+".join)
def test_chart_holds_every_rule_the_service_puts_into_grant_roles(
    install_scangate_chart: InstallScangateChart, scanners: list[str]
) -> None:
    release = install_scangate_chart({"scanners": scanners}).release
    held = permissions(release.get("Role", "scangate-target", "payments")["rules"])
    for scanner in scanners:
        needed = permissions(profile_rules(scanner, ["web-0"]))
        assert needed <= held, f"{scanner}: missing {needed - held}"


def test_grants_namespace_role_only_manages_service_accounts_and_their_tokens(
    install_scangate_chart: InstallScangateChart,
) -> None:
    release = install_scangate_chart({"scanners": ["exec", "debug", "sidecar"]}).release
    role = release.get("Role", "scangate-grants", "scangate-grants")
    assert role["rules"] == GRANTS_NAMESPACE_RULES


def test_the_namespace_read_is_restricted_to_the_target_namespace_by_name(
    install_scangate_chart: InstallScangateChart,
) -> None:
    release = install_scangate_chart({"targetNamespaces": ["payments", "orders"]}).release
    for namespace in ("payments", "orders"):
        role = release.get("Role", "scangate-target", namespace)
        (rule,) = [r for r in role["rules"] if "namespaces" in r["resources"]]
        assert rule == {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "verbs": ["get"],
            "resourceNames": [namespace],
        }


@pytest.mark.parametrize(
    "values",
    [
        {"scanners": ["exec", "debug", "sidecar"], "targetNamespaces": ["payments", "orders"]},
        {"scanners": ["exec", "debug", "sidecar"], "targetNamespaces": ["*"]},
    ],
    ids=["namespaced", "cluster-wide"],
)
def test_no_rule_reaches_secrets_wildcards_or_escalation(
    install_scangate_chart: InstallScangateChart, values: dict[str, Any]
) -> None:
    release = install_scangate_chart(values).release
    for rule in all_rules(release):
        assert "nonResourceURLs" not in rule
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), rule
        assert not any(r.split("/")[0] == "secrets" for r in rule["resources"]), rule
        assert not set(rule["verbs"]) & DANGEROUS_VERBS, rule
        assert rule.get("resourceNames", ["x"]) != [], "empty resourceNames means every name"
    for binding in release.of_kind("RoleBinding") + release.of_kind("ClusterRoleBinding"):
        # Only the chart's own roles are bound: never cluster-admin, admin, edit or view.
        assert binding["roleRef"]["name"].startswith("scangate-"), binding["roleRef"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "scangate", "namespace": "scangate"}
        ]


def test_cluster_role_exists_only_for_the_explicit_cluster_wide_target(
    install_scangate_chart: InstallScangateChart,
) -> None:
    namespaced = install_scangate_chart({"targetNamespaces": ["payments", "orders"]}).release
    assert namespaced.of_kind("ClusterRole") == []
    assert namespaced.of_kind("ClusterRoleBinding") == []


def test_cluster_wide_target_uses_one_cluster_role_with_the_same_rules(
    install_scangate_chart: InstallScangateChart,
) -> None:
    scanners = ["exec", "sidecar"]
    release = install_scangate_chart({"targetNamespaces": ["*"], "scanners": scanners}).release
    (cluster_role,) = release.of_kind("ClusterRole")
    (binding,) = release.of_kind("ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role["metadata"]["name"],
    }
    assert permissions(cluster_role["rules"]) == expected_target_permissions(scanners)
    # Service accounts stay confined to the grants namespace even cluster-wide.
    assert [r["metadata"]["namespace"] for r in release.of_kind("Role")] == ["scangate-grants"]
