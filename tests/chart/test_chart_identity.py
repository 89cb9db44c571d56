"""The chart's ServiceAccount, used with a token kubesim minted for it, can do scangate's job and
nothing else: asked through the real `kubectl auth can-i`, and by doing the job for real (grant
objects created through kubesim's RBAC escalation prevention, then revoked).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from app.kube.profiles import profile_rules
from tests.support.chart import InstalledChart, InstallScangateChart

ALL_PROFILES = ["exec", "debug", "sidecar"]

# (verb, resource[/subresource], namespace or None for cluster scope)
CANNOT: list[tuple[str, str, str | None]] = [
    ("get", "secrets", "payments"),
    ("list", "secrets", "payments"),
    ("get", "secrets", "scangate-grants"),
    ("get", "secrets", "scangate"),
    ("list", "secrets", "kube-system"),
    ("create", "pods", "payments"),
    ("delete", "pods", "payments"),
    ("create", "pods", "scangate-grants"),
    ("create", "pods/portforward", "payments"),
    ("list", "pods", "orders"),
    ("get", "pods", "kube-system"),
    ("create", "pods/exec", "orders"),
    ("create", "roles", "orders"),
    ("create", "rolebindings", "kube-system"),
    ("update", "roles", "payments"),
    ("patch", "rolebindings", "payments"),
    ("escalate", "roles", "payments"),
    ("bind", "roles", "payments"),
    ("create", "serviceaccounts", "payments"),
    ("create", "serviceaccounts", "scangate"),
    ("create", "serviceaccounts/token", "payments"),
    ("create", "serviceaccounts/token", "scangate"),
    ("impersonate", "serviceaccounts", "scangate-grants"),
    ("get", "configmaps", "scangate"),
    ("patch", "deployments", "scangate"),
    ("create", "clusterroles", None),
    ("create", "clusterrolebindings", None),
    ("delete", "namespaces", None),
    ("list", "namespaces", None),
]
CAN: list[tuple[str, str, str | None]] = [
    ("create", "serviceaccounts", "scangate-grants"),
    ("delete", "serviceaccounts", "scangate-grants"),
    ("create", "serviceaccounts/token", "scangate-grants"),
    ("list", "pods", "payments"),
    ("create", "roles", "payments"),
    ("delete", "rolebindings", "payments"),
    ("create", "pods/exec", "payments"),
    ("patch", "pods/ephemeralcontainers", "payments"),
    ("get", "pods/log", "payments"),
]


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=10s", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def can_i(kubeconfig: Path, verb: str, resource: str, namespace: str | None, name: str = "") -> str:
    kind, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, f"{kind}/{name}" if name else kind]
    if subresource:
        args.append(f"--subresource={subresource}")
    args += ["-n", namespace] if namespace else []
    answer = kubectl(kubeconfig, *args)
    assert answer.stdout.strip() in ("yes", "no"), answer.stderr
    return answer.stdout.strip()


@pytest.fixture
def chart(install_scangate_chart: InstallScangateChart) -> InstalledChart:
    return install_scangate_chart({"scanners": ALL_PROFILES, "targetNamespaces": ["payments"]})


def test_chart_identity_cannot_read_secrets_create_pods_or_act_outside_its_namespaces(
    chart: InstalledChart,
) -> None:
    # One install, every question: a list of wrong answers reads better than the first one.
    allowed = [case for case in CANNOT if can_i(chart.kubectl_kubeconfig, *case) != "no"]
    assert allowed == []


def test_chart_identity_can_do_each_step_of_the_grant_lifecycle(chart: InstalledChart) -> None:
    refused = [case for case in CAN if can_i(chart.kubectl_kubeconfig, *case) != "yes"]
    assert refused == []


def test_chart_identity_reads_only_its_target_namespace_objects(chart: InstalledChart) -> None:
    assert kubectl(chart.kubectl_kubeconfig, "get", "namespace", "payments").returncode == 0
    for args in (
        ("get", "namespace", "orders"),
        ("get", "secrets", "-n", "payments"),
        ("get", "secret", "db-credentials", "-n", "payments"),
        ("get", "pods", "-n", "orders"),
    ):
        refused = kubectl(chart.kubectl_kubeconfig, *args)
        assert refused.returncode != 0, args
        assert "Forbidden" in refused.stderr, args


@pytest.fixture
def as_chart(chart: InstalledChart) -> Iterator[k8s.ApiClient]:
    api = k8s_config.new_client_from_config(config_file=str(chart.kubeconfig))
    yield api
    api.close()


def _forbidden(call: Any, *args: Any) -> str:
    with pytest.raises(k8s.ApiException) as refused:
        call(*args)
    assert refused.value.status == 403, refused.value.body
    return str(refused.value.body)


def _role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name},
        "rules": rules,
    }


def _binding(name: str, role_kind: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "scangate-grants"}],
    }


@pytest.mark.parametrize(
    "rules",
    [
        [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        [{"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]}],
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}],
        [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    ],
    ids=["secrets", "port-forward", "create-pods", "everything"],
)
def test_escalation_prevention_stops_the_chart_identity_granting_more_than_it_holds(
    as_chart: k8s.ApiClient, rules: list[dict[str, Any]]
) -> None:
    rbac = k8s.RbacAuthorizationV1Api(as_chart)
    _forbidden(rbac.create_namespaced_role, "payments", _role("scangate-escalate", rules))


def test_chart_identity_cannot_bind_powerful_cluster_roles_or_work_outside_targets(
    as_chart: k8s.ApiClient,
) -> None:
    rbac = k8s.RbacAuthorizationV1Api(as_chart)
    for cluster_role in ("admin", "edit", "cluster-admin"):
        binding = _binding("scangate-bind", "ClusterRole", cluster_role)
        _forbidden(rbac.create_namespaced_role_binding, "payments", binding)
    exec_rules = profile_rules("exec", ["api-0"])
    _forbidden(rbac.create_namespaced_role, "orders", _role("scangate-outside", exec_rules))


@pytest.mark.parametrize("scanner", ALL_PROFILES)
def test_chart_identity_provisions_and_revokes_a_grant_for_each_profile(
    chart: InstalledChart, as_chart: k8s.ApiClient, tmp_path: Path, scanner: str
) -> None:
    """The grant lifecycle (docs/ARCHITECTURE.md), with exactly the chart's permissions."""
    core, rbac = k8s.CoreV1Api(as_chart), k8s.RbacAuthorizationV1Api(as_chart)
    name = f"scangate-{uuid.uuid4().hex[:26]}"
    labels = {
        "app.kubernetes.io/managed-by": "scangate",
        "scangate.dev/grant": name[9:],
        # The chart's installation id (installationId, default: the grants namespace).
        "scangate.dev/installation": "scangate-grants",
    }

    core.create_namespaced_service_account(
        "scangate-grants", {"metadata": {"name": name, "labels": labels}}
    )
    role = _role(name, profile_rules(scanner, ["web-0"]))
    role["metadata"]["labels"] = labels
    rbac.create_namespaced_role("payments", role)
    binding = _binding(name, "Role", name)
    binding["metadata"]["labels"] = labels  # the chart's admission policy requires them
    rbac.create_namespaced_role_binding("payments", binding)
    token_request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 600},
    }
    token = core.create_namespaced_service_account_token(name, "scangate-grants", token_request)
    grant = chart.kubeconfig_for_token(token.status.token, tmp_path / "grant", for_kubectl=True)

    assert kubectl(grant, "get", "pod", "web-0", "-n", "payments").returncode == 0
    for rule in profile_rules(scanner, ["web-0"]):
        (resource,) = rule["resources"]
        for verb in rule["verbs"]:
            assert can_i(grant, verb, resource, "payments", "web-0") == "yes", (verb, resource)
            assert can_i(grant, verb, resource, "payments", "web-1") == "no", (verb, resource)
    assert can_i(grant, "list", "pods", "payments") == "no"
    assert can_i(grant, "get", "secrets", "payments") == "no"

    # Revocation order (docs/ARCHITECTURE.md, "Ending grants"): the RoleBinding first (denies
    # at once; the token, used a moment ago, still authenticates from the apiserver's cache),
    # then the rest.
    rbac.delete_namespaced_role_binding(name, "payments")
    forbidden = kubectl(grant, "get", "pod", "web-0", "-n", "payments")
    assert forbidden.returncode != 0
    assert "(Forbidden)" in forbidden.stderr or "(Unauthorized)" in forbidden.stderr
    rbac.delete_namespaced_role(name, "payments")
    core.delete_namespaced_service_account(name, "scangate-grants")
    revoked = kubectl(grant, "get", "pod", "web-0", "-n", "payments")
    assert revoked.returncode != 0
    # Denied: 403 while the cached authentication lasts, 401 after; never allowed.
    assert "(Forbidden)" in revoked.stderr or "(Unauthorized)" in revoked.stderr
