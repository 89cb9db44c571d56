"""The chart's ValidatingAdmissionPolicy confines scangate's own ServiceAccount to what a grant
consists of, whatever its RBAC would allow: every refusal below is made by kubesim evaluating the
chart's policy (CEL) on a request sent with a token of the chart's ServiceAccount, and each is
a request RBAC alone would have let through. A correctly shaped grant still provisions, works
and is revoked. With `targetNamespaces: ["*"]` the same policy keeps scangate out of the denied
namespaces, the grants namespace and the release namespace.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from app.grants.ids import new_grant_id
from app.kube.naming import (
    GRANT_LABEL,
    INSTALLATION_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    object_name,
)
from app.kube.profiles import profile_rules
from kubesim.pytest_plugin import KubesimHandle
from tests.support.chart import InstalledChart, InstallScangateChart

ALL_PROFILES = ["exec", "debug", "sidecar"]
POLICY = "scangate-scangate-confine"
DENIED_BY = f"ValidatingAdmissionPolicy '{POLICY}' with binding '{POLICY}' denied request: "


# --- the objects of a grant, as scangate builds them (app/kube/manifests.py) ----------------


# The chart's installation id: `installationId`, by default the grants namespace.
INSTALLATION = "scangate-grants"


def labels_of(grant_id: str, installation: str = INSTALLATION) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        GRANT_LABEL: grant_id,
        INSTALLATION_LABEL: installation,
    }


def grant_account(grant_id: str) -> dict[str, Any]:
    name = object_name(grant_id)
    return {"metadata": {"name": name, "labels": labels_of(grant_id)}}


def grant_role(grant_id: str, scanner: str = "exec", pods: tuple[str, ...] = ("web-0",)) -> Any:
    return {
        "metadata": {"name": object_name(grant_id), "labels": labels_of(grant_id)},
        "rules": profile_rules(scanner, list(pods)),
    }


def grant_binding(grant_id: str, grants_namespace: str = "scangate-grants") -> dict[str, Any]:
    name = object_name(grant_id)
    return {
        "metadata": {"name": name, "labels": labels_of(grant_id)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": grants_namespace}],
    }


# --- fixtures -------------------------------------------------------------------------------


class ChartIdentity:
    """The official client and raw HTTP, both authenticated as the chart's ServiceAccount."""

    def __init__(self, installed: InstalledChart) -> None:
        self.installed = installed
        self.api = k8s_config.new_client_from_config(config_file=str(installed.kubeconfig))
        self.core = k8s.CoreV1Api(self.api)
        self.rbac = k8s.RbacAuthorizationV1Api(self.api)

    def refused(self, call: Callable[..., Any], *args: Any) -> str:
        """The message of the policy's 403; fails if the request passed or failed otherwise."""
        with pytest.raises(k8s.ApiException) as caught:
            call(*args)
        assert caught.value.status == 403, caught.value.body
        message = str(json.loads(caught.value.body)["message"])
        assert DENIED_BY in message, message
        return message.split(DENIED_BY, 1)[1]

    def http(self, method: str, path: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.installed.token}"}
        with httpx.Client(base_url=self.installed.cluster.url, trust_env=False) as http:
            return http.request(method, path, headers=headers, timeout=30)


@pytest.fixture
def chart(install_scangate_chart: InstallScangateChart) -> InstalledChart:
    return install_scangate_chart({"scanners": ALL_PROFILES, "targetNamespaces": ["payments"]})


@pytest.fixture
def scangate(chart: InstalledChart) -> Iterator[ChartIdentity]:
    identity = ChartIdentity(chart)
    yield identity
    identity.api.close()


def test_the_chart_installs_the_policy_bound_to_deny_on_its_service_account(
    chart: InstalledChart,
) -> None:
    policy = chart.release.get("ValidatingAdmissionPolicy", POLICY)
    (condition,) = policy["spec"]["matchConditions"]
    assert condition["expression"] == (
        "request.userInfo.username == 'system:serviceaccount:scangate:scangate'"
    )
    binding = chart.release.get("ValidatingAdmissionPolicyBinding", POLICY)
    assert binding["spec"] == {"policyName": POLICY, "validationActions": ["Deny"]}
    admin = k8s.AdmissionregistrationV1Api(chart.cluster.admin_client())
    assert admin.read_validating_admission_policy(POLICY).spec.failure_policy == "Fail"


# --- scangate never execs, attaches or debugs itself ----------------------------------------

SELF_ACCESS = (
    "scangate's own identity may not exec, attach or add debug containers: it holds these "
    "rights only so that it can grant them"
)


def test_scangate_cannot_exec_into_a_pod_with_kubectl(
    install_scangate_chart: Callable[..., Any], kubesim_tls: KubesimHandle
) -> None:
    # Over TLS: kubectl's WebSocket exec cannot carry the token in the URL as plain HTTP would.
    chart = install_scangate_chart({"scanners": ALL_PROFILES}, cluster=kubesim_tls)
    run = subprocess.run(
        ["kubectl", "--kubeconfig", str(chart.kubectl_kubeconfig), "--request-timeout=10s",
         "-n", "payments", "exec", "web-0", "-c", "app", "--", "id"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode != 0
    assert f'pods "web-0" is forbidden: {DENIED_BY}{SELF_ACCESS}' in run.stderr, run.stderr


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/namespaces/payments/pods/web-0/exec?container=app&command=id",
        "/api/v1/namespaces/payments/pods/web-0/attach?container=app",
    ],
    ids=["exec", "attach"],
)
def test_scangate_cannot_exec_or_attach(scangate: ChartIdentity, path: str) -> None:
    refused = scangate.http("POST", path)
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"] == f'pods "web-0" is forbidden: {DENIED_BY}{SELF_ACCESS}'


def test_scangate_cannot_add_a_debug_container(scangate: ChartIdentity) -> None:
    debug = {"name": "debug", "image": "busybox:1.36", "command": ["sh"]}
    patch = {"spec": {"ephemeralContainers": [debug]}}
    message = scangate.refused(
        scangate.core.patch_namespaced_pod_ephemeralcontainers, "web-0", "payments", patch
    )
    assert message == SELF_ACCESS


# --- Roles ----------------------------------------------------------------------------------


def test_a_role_not_named_for_a_grant_is_refused(scangate: ChartIdentity) -> None:
    role = grant_role(new_grant_id())
    role["metadata"]["name"] = "reader"
    message = scangate.refused(scangate.rbac.create_namespaced_role, "payments", role)
    assert message == 'scangate may only write roles named scangate-<grant id>, not "reader"'


def test_a_grant_role_without_scangates_labels_is_refused(scangate: ChartIdentity) -> None:
    grant_id = new_grant_id()
    role = grant_role(grant_id)
    role["metadata"]["labels"] = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, GRANT_LABEL: "someone-else"}
    message = scangate.refused(scangate.rbac.create_namespaced_role, "payments", role)
    assert message.startswith("scangate may only write roles labelled ")


def test_scangate_cannot_write_or_delete_another_installations_grant_objects(
    scangate: ChartIdentity, chart: Any
) -> None:
    grant_id = new_grant_id()
    theirs = grant_role(grant_id)
    theirs["metadata"]["labels"] = labels_of(grant_id, "other-installation")
    message = scangate.refused(scangate.rbac.create_namespaced_role, "payments", theirs)
    assert message == (
        "scangate may only write roles labelled app.kubernetes.io/managed-by=scangate, "
        f"scangate.dev/grant=<grant id> and scangate.dev/installation={INSTALLATION}, "
        f"not {object_name(grant_id)}"
    )
    admin = k8s.RbacAuthorizationV1Api(chart.cluster.admin_client())
    admin.create_namespaced_role("payments", theirs)
    message = scangate.refused(
        scangate.rbac.delete_namespaced_role, object_name(grant_id), "payments"
    )
    assert message.startswith("scangate may only delete roles labelled ")
    assert (
        admin.read_namespaced_role(object_name(grant_id), "payments").metadata.labels[
            INSTALLATION_LABEL
        ]
        == "other-installation"
    )


def test_scangate_may_delete_a_grant_object_from_before_installation_labels(
    scangate: ChartIdentity, chart: Any
) -> None:
    grant_id = new_grant_id()
    legacy = grant_role(grant_id)
    del legacy["metadata"]["labels"][INSTALLATION_LABEL]
    message = scangate.refused(scangate.rbac.create_namespaced_role, "payments", legacy)
    assert message.startswith("scangate may only write roles labelled ")
    admin = k8s.RbacAuthorizationV1Api(chart.cluster.admin_client())
    admin.create_namespaced_role("payments", legacy)
    scangate.rbac.delete_namespaced_role(object_name(grant_id), "payments")


@pytest.mark.parametrize(
    "rule",
    [
        # Every pod: RBAC's escalation check passes (scangate holds exactly this), the policy not.
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["web-0"]},
        {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "verbs": ["get"],
            "resourceNames": ["payments"],
        },
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["roles"],
            "verbs": ["create"],
            "resourceNames": ["x"],
        },
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"], "resourceNames": []},
    ],
    ids=["no-resource-names", "list-pods", "read-namespace", "create-roles", "empty-names"],
)
def test_a_grant_role_with_a_rule_outside_the_profiles_is_refused(
    scangate: ChartIdentity, rule: dict[str, Any]
) -> None:
    role = grant_role(new_grant_id())
    role["rules"].append(rule)
    message = scangate.refused(scangate.rbac.create_namespaced_role, "payments", role)
    assert message == (
        "scangate may only create Roles whose every rule is a rule of an enabled scanner "
        "profile (exec, debug, sidecar) restricted with resourceNames"
    )


def test_scangate_cannot_delete_roles_that_are_not_a_grants(
    scangate: ChartIdentity, chart: InstalledChart
) -> None:
    admin = k8s.RbacAuthorizationV1Api(chart.cluster.admin_client())
    foreign = grant_role(new_grant_id())
    foreign["metadata"]["labels"] = {"team": "payments"}
    admin.create_namespaced_role("payments", foreign)
    message = scangate.refused(
        scangate.rbac.delete_namespaced_role, foreign["metadata"]["name"], "payments"
    )
    assert message.startswith("scangate may only delete roles labelled ")
    # Nor the chart's own Role, whose rights are scangate's.
    message = scangate.refused(scangate.rbac.delete_namespaced_role, "scangate-target", "payments")
    assert (
        message == 'scangate may only write roles named scangate-<grant id>, not "scangate-target"'
    )
    assert admin.read_namespaced_role("scangate-target", "payments").metadata.name


# --- RoleBindings ---------------------------------------------------------------------------

BINDING_SHAPE = (
    "scangate may only bind the Role scangate-<grant id> to the ServiceAccount of the same name "
    "in the grants namespace scangate-grants"
)


def _with_subject(binding: dict[str, Any], subject: dict[str, str]) -> dict[str, Any]:
    binding["subjects"] = [subject]
    return binding


@pytest.mark.parametrize(
    "change",
    [
        lambda b: _with_subject(
            b, {"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}
        ),
        lambda b: _with_subject(
            b,
            {
                "kind": "Group",
                "name": "system:authenticated",
                "apiGroup": "rbac.authorization.k8s.io",
            },
        ),
        lambda b: _with_subject(
            b, {"kind": "ServiceAccount", "name": b["metadata"]["name"], "namespace": "payments"}
        ),
        lambda b: _with_subject(
            b, {"kind": "ServiceAccount", "name": "default", "namespace": "scangate-grants"}
        ),
        lambda b: {
            **b,
            "subjects": [
                *b["subjects"],
                {"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"},
            ],
        },
        lambda b: {**b, "roleRef": {**b["roleRef"], "name": "scangate-target"}},
    ],
    ids=["a-user", "a-group", "sa-elsewhere", "another-sa", "extra-subject", "other-role"],
)
def test_a_grant_binding_of_any_other_shape_is_refused(
    scangate: ChartIdentity,
    chart: InstalledChart,
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    grant_id = new_grant_id()
    # The Role must exist: without `bind`, the API server resolves it for escalation checks.
    admin = k8s.RbacAuthorizationV1Api(chart.cluster.admin_client())
    admin.create_namespaced_role("payments", grant_role(grant_id))
    binding = change(grant_binding(grant_id))
    message = scangate.refused(scangate.rbac.create_namespaced_role_binding, "payments", binding)
    assert message == BINDING_SHAPE


# --- ServiceAccounts and their tokens -------------------------------------------------------


def test_service_accounts_only_for_grants_and_tokens_only_for_them(
    scangate: ChartIdentity, chart: InstalledChart
) -> None:
    account = grant_account(new_grant_id())
    account["metadata"]["name"] = "helper"
    message = scangate.refused(
        scangate.core.create_namespaced_service_account, "scangate-grants", account
    )
    assert (
        message == 'scangate may only write serviceaccounts named scangate-<grant id>, not "helper"'
    )
    token_request = {"spec": {"expirationSeconds": 600}}
    message = scangate.refused(
        scangate.core.create_namespaced_service_account_token,
        "default",
        "scangate-grants",
        token_request,
    )
    assert message == (
        'scangate may only write serviceaccounts/token named scangate-<grant id>, not "default"'
    )


# --- what a grant consists of still works ---------------------------------------------------


@pytest.mark.parametrize("scanner", ALL_PROFILES)
def test_a_grant_shaped_as_scangate_builds_it_provisions_works_and_is_revoked(
    scangate: ChartIdentity, chart: InstalledChart, tmp_path: Path, scanner: str
) -> None:
    grant_id = new_grant_id()
    name = object_name(grant_id)
    scangate.core.create_namespaced_service_account("scangate-grants", grant_account(grant_id))
    scangate.rbac.create_namespaced_role("payments", grant_role(grant_id, scanner))
    scangate.rbac.create_namespaced_role_binding("payments", grant_binding(grant_id))
    minted = scangate.core.create_namespaced_service_account_token(
        name, "scangate-grants", {"spec": {"expirationSeconds": 600}}
    )
    grant = chart.kubeconfig_for_token(minted.status.token, tmp_path / "grant", for_kubectl=True)
    got = subprocess.run(
        ["kubectl", "--kubeconfig", str(grant), "-n", "payments", "get", "pod", "web-0",
         "-o", "name"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert got.stdout == "pod/web-0\n", got.stderr

    scangate.core.delete_namespaced_service_account(name, "scangate-grants")
    scangate.rbac.delete_namespaced_role_binding(name, "payments")
    scangate.rbac.delete_namespaced_role(name, "payments")
    admin = k8s.RbacAuthorizationV1Api(chart.cluster.admin_client())
    assert [r.metadata.name for r in admin.list_namespaced_role("payments").items] == [
        "scangate-target"
    ]


def test_the_policy_leaves_every_other_identity_alone(chart: InstalledChart) -> None:
    admin = k8s.RbacAuthorizationV1Api(chart.cluster.admin_client())
    role = {
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    assert admin.create_namespaced_role("payments", role).metadata.name == "reader"


# --- item 2: cluster-wide rights never reach the denied namespaces --------------------------


@pytest.fixture
def cluster_wide(install_scangate_chart: Callable[..., Any]) -> Iterator[ChartIdentity]:
    installed = install_scangate_chart({"scanners": ALL_PROFILES, "targetNamespaces": ["*"]})
    identity = ChartIdentity(installed)
    yield identity
    identity.api.close()


@pytest.mark.parametrize(
    "namespace", ["kube-system", "kube-public", "kube-node-lease", "scangate-grants", "scangate"]
)
def test_cluster_wide_scangate_cannot_grant_or_exec_in_a_denied_namespace(
    cluster_wide: ChartIdentity, namespace: str
) -> None:
    installed = cluster_wide.installed
    admin = k8s.CoreV1Api(installed.cluster.admin_client())
    for name in ("kube-public", "kube-node-lease"):
        if name not in {n.metadata.name for n in admin.list_namespace().items}:
            admin.create_namespace({"metadata": {"name": name}})
    grant_id = new_grant_id()
    message = cluster_wide.refused(
        cluster_wide.rbac.create_namespaced_role, namespace, grant_role(grant_id)
    )
    assert (
        message
        == f"scangate may not write roles in namespace {namespace}: it is never a grant target"
    )
    # A binding needs its Role to exist (the API server resolves it without `bind`).
    rbac_admin = k8s.RbacAuthorizationV1Api(installed.cluster.admin_client())
    rbac_admin.create_namespaced_role(namespace, grant_role(grant_id))
    message = cluster_wide.refused(
        cluster_wide.rbac.create_namespaced_role_binding, namespace, grant_binding(grant_id)
    )
    assert message.startswith(f"scangate may not write rolebindings in namespace {namespace}")
    exec_path = f"/api/v1/namespaces/{namespace}/pods/any/exec?command=id"
    refused = cluster_wide.http("POST", exec_path)
    assert refused.status_code == 403
    assert SELF_ACCESS in refused.json()["message"]


def test_cluster_wide_scangate_still_grants_in_an_ordinary_namespace(
    cluster_wide: ChartIdentity,
) -> None:
    grant_id = new_grant_id()
    for namespace in ("payments", "orders"):
        role = cluster_wide.rbac.create_namespaced_role(namespace, grant_role(grant_id))
        assert role.metadata.name == object_name(grant_id)
        binding = cluster_wide.rbac.create_namespaced_role_binding(
            namespace, grant_binding(grant_id)
        )
        assert binding.role_ref.name == object_name(grant_id)
