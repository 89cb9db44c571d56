"""RBAC over the wire: the table's cases through the real ``kubectl auth can-i``, and privilege
escalation attempts over HTTP with the official client, against a running kubesim.

``test_rbac_table.py`` proves the evaluator; this file proves the server uses it the way a
real kube-apiserver does: request attributes derived from kubectl's SelfSubjectAccessReviews,
the groups it gives ServiceAccounts, 403 Status messages, and escalation checks on writes.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from kubesim.rbac import RequestAttributes, UserInfo
from tests.support.rbac_cases import (
    CASES,
    GRANTS_NS,
    RBAC,
    Case,
    alice_role,
    ask,
    cluster_role,
    role,
    role_binding,
    rule,
    service_account,
)

# A cross-section of the table: every family of behaviour, each with a yes and a no.
WIRE_CASE_IDS = (
    "role_grants_listed_verb",
    "role_denies_unlisted_verb",
    "verb_wildcard_grants_every_verb",
    "update_does_not_imply_patch",
    "core_group_rule_does_not_match_apps_group",
    "named_api_group_matches",
    "resource_rule_does_not_grant_its_subresources",
    "exact_subresource_rule_grants_it",
    "star_slash_subresource_matches_any_resource",
    "pods_slash_star_is_not_a_wildcard",
    "resource_names_allow_named_object",
    "resource_names_deny_other_object",
    "resource_names_never_match_list",
    "resource_names_never_match_create",
    "resource_names_restrict_subresource",
    "role_binding_grants_only_in_its_namespace",
    "role_binding_does_not_grant_at_cluster_scope",
    "role_binding_to_cluster_role_grants_in_binding_namespace",
    "role_binding_to_cluster_role_does_not_grant_other_namespaces",
    "cluster_role_binding_grants_in_every_namespace",
    "cluster_role_binding_grants_cluster_scoped_resources",
    "group_subject_matches_member",
    "group_subject_does_not_match_non_member",
    "service_account_subject_from_other_namespace_matches",
    "service_account_subject_namespace_must_match",
    "group_system_serviceaccounts_matches_every_service_account",
    "group_namespace_serviceaccounts_matches_that_namespace",
    "group_namespace_serviceaccounts_does_not_match_other_namespace",
    "group_system_authenticated_matches_every_user",
    "non_resource_url_exact_match",
    "non_resource_url_trailing_star_is_prefix_match",
    "non_resource_url_via_role_binding_is_not_honoured",
    "system_masters_allowed_without_any_binding",
    "no_bindings_means_denied",
)
WIRE_CASES = [case for case in CASES if case.id in WIRE_CASE_IDS]


# --- credentials ---------------------------------------------------------------------------


def write_kubeconfig(handle: KubesimHandle, token: str, path: Path) -> Path:
    """A kubeconfig like scangate issues: server, CA data, one token user.

    kubectl never sends a bearer token over plain HTTP (kubernetes/kubectl#744), so every
    kubectl test here runs against ``kubesim_tls``.
    """
    cluster: dict[str, Any] = {"server": handle.url}
    if handle.ca_cert_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(handle.ca_cert_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubesim", "cluster": cluster}],
        "users": [{"name": "subject", "user": {"token": token}}],
        "contexts": [
            {
                "name": "subject",
                "context": {"cluster": "kubesim", "user": "subject", "namespace": "payments"},
            }
        ],
        "current-context": "subject",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def service_account_token(handle: KubesimHandle, namespace: str, name: str) -> str:
    """A real TokenRequest token: the server, not the test, decides the user's groups."""
    with handle.admin_client() as api_client:
        core = client.CoreV1Api(api_client)
        try:
            account = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
            core.create_namespaced_service_account(namespace, account)
        except ApiException as exc:
            if exc.status != 409:
                raise
        # No audiences: the server's own, as a real TokenRequest defaults to.
        spec = client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        request = client.AuthenticationV1TokenRequest(spec=spec)
        response = core.create_namespaced_service_account_token(name, namespace, request)
    token = response.status.token if response.status is not None else None
    assert token, "TokenRequest returned no token"
    return token


def token_for(handle: KubesimHandle, who: UserInfo) -> str:
    if who.name.startswith("system:serviceaccount:"):
        _, _, namespace, name = who.name.split(":")
        return service_account_token(handle, namespace, name)
    token = secrets.token_urlsafe(24)
    handle.add_user_token(token, who.name, list(who.groups))
    return token


def user_client(handle: KubesimHandle, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = handle.url
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    if handle.ca_cert_pem is not None:
        ca_file = handle.admin_kubeconfig.with_name("kubesim-ca.pem")
        ca_file.write_bytes(handle.ca_cert_pem)
        configuration.ssl_ca_cert = str(ca_file)
    return client.ApiClient(configuration)


# --- kubectl -------------------------------------------------------------------------------


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cache = kubeconfig.with_name("kubectl-cache")
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def can_i_args(request: RequestAttributes) -> list[str]:
    """``kubectl auth can-i`` arguments that make kubectl send exactly ``request`` as a
    SelfSubjectAccessReview (``--all-namespaces`` is the cluster scope: namespace "")."""
    if not request.resource_request:
        return ["auth", "can-i", request.verb, request.path]
    target = request.resource + (f".{request.api_group}" if request.api_group else "")
    if request.name:
        target = f"{target}/{request.name}"
    args = ["auth", "can-i", request.verb, target]
    if request.subresource:
        args += ["--subresource", request.subresource]
    if request.namespace:
        args += ["--namespace", request.namespace]
    else:
        args.append("--all-namespaces")
    return args


def kubectl_can_i(kubeconfig: Path, request: RequestAttributes) -> bool:
    result = kubectl(kubeconfig, *can_i_args(request))
    answer = result.stdout.split(maxsplit=1)[0] if result.stdout.strip() else ""
    assert answer in ("yes", "no"), f"kubectl auth can-i failed: {result.stderr}"
    # kubectl exits 0 for yes and 1 for no; both must agree with what it printed.
    assert result.returncode == (0 if answer == "yes" else 1), result.stderr
    return answer == "yes"


def check_case_over_the_wire(handle: KubesimHandle, case: Case, tmp_path: Path) -> None:
    if case.world:
        handle.apply(list(case.world))
    kubeconfig = write_kubeconfig(handle, token_for(handle, case.who), tmp_path / "kubeconfig")

    assert kubectl_can_i(kubeconfig, case.request) is case.allowed


@pytest.mark.parametrize("case", WIRE_CASES, ids=[case.id for case in WIRE_CASES])
def test_kubectl_auth_can_i(kubesim_tls: KubesimHandle, case: Case, tmp_path: Path) -> None:
    check_case_over_the_wire(kubesim_tls, case, tmp_path)


def test_wire_subset_names_real_cases() -> None:
    known = {case.id: case for case in CASES}
    assert all(known[case_id].over_the_wire for case_id in WIRE_CASE_IDS)


def test_denied_kubectl_get_prints_kube_apiserver_message(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    token = token_for(kubesim_tls, UserInfo("alice", ()))
    kubeconfig = write_kubeconfig(kubesim_tls, token, tmp_path / "kubeconfig")

    result = kubectl(kubeconfig, "get", "pod", "web-0", "--namespace", "payments")

    assert result.returncode == 1
    assert (
        'Error from server (Forbidden): pods "web-0" is forbidden: User "alice" cannot get'
        ' resource "pods" in API group "" in the namespace "payments"'
    ) in result.stderr


# --- escalation over HTTP ------------------------------------------------------------------

# Alice may write Roles and RoleBindings in payments; escalation prevention decides which.
ROLE_WRITER = rule("create get update delete", "roles rolebindings", groups=RBAC)


@pytest.fixture
def alice_rbac(kubesim: KubesimHandle) -> Iterator[client.RbacAuthorizationV1Api]:
    """Alice's RBAC client; the test applies what Alice holds before using it."""
    token = token_for(kubesim, UserInfo("alice", ()))
    with user_client(kubesim, token) as api_client:
        yield client.RbacAuthorizationV1Api(api_client)


def status_body(refused: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    """The Status object the server answered with."""
    status: dict[str, Any] = json.loads(refused.value.body or "{}")
    return status


# The client sends plain dict bodies as they are, which keeps manifests in the API's own spelling.
def _create_role(api: client.RbacAuthorizationV1Api, name: str, *rules: dict[str, Any]) -> None:
    body: Any = {"metadata": {"name": name}, "rules": list(rules)}
    api.create_namespaced_role("payments", body)


def _create_binding(api: client.RbacAuthorizationV1Api, role_ref: str) -> None:
    kind, _, name = role_ref.partition("/")
    body: Any = {
        "metadata": {"name": "new-binding"},
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": name},
        "subjects": [service_account("scangate-x", GRANTS_NS)],
    }
    api.create_namespaced_role_binding("payments", body)


def test_role_within_held_permissions_is_created(
    kubesim: KubesimHandle, alice_rbac: client.RbacAuthorizationV1Api
) -> None:
    kubesim.apply(list(alice_role(ROLE_WRITER, rule("get list", "pods"))))

    _create_role(alice_rbac, "reader", rule("get", "pods", names="web-0"))

    created = alice_rbac.read_namespaced_role("reader", "payments")
    assert created.rules is not None
    assert created.rules[0].resource_names == ["web-0"]


def test_role_beyond_held_permissions_is_forbidden(
    kubesim: KubesimHandle, alice_rbac: client.RbacAuthorizationV1Api
) -> None:
    kubesim.apply(list(alice_role(ROLE_WRITER, rule("get", "pods"))))

    with pytest.raises(ApiException) as refused:
        _create_role(alice_rbac, "too-much", rule("get delete", "pods"))

    assert refused.value.status == 403
    status = status_body(refused)
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'roles.rbac.authorization.k8s.io "too-much" is forbidden: user "alice"'
        ' (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently'
        ' held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}'
    )


def test_escalate_allows_role_beyond_held_permissions(
    kubesim: KubesimHandle, alice_rbac: client.RbacAuthorizationV1Api
) -> None:
    kubesim.apply(list(alice_role(ROLE_WRITER, rule("escalate", "roles", groups=RBAC))))

    _create_role(alice_rbac, "powerful", rule("*", "secrets"))

    created = alice_rbac.read_namespaced_role("powerful", "payments")
    assert created.rules is not None
    assert created.rules[0].verbs == ["*"]


def test_binding_role_beyond_held_permissions_is_forbidden(
    kubesim: KubesimHandle, alice_rbac: client.RbacAuthorizationV1Api
) -> None:
    kubesim.apply([*alice_role(ROLE_WRITER), role("payments", "powerful", rule("*", "secrets"))])

    with pytest.raises(ApiException) as refused:
        _create_binding(alice_rbac, "Role/powerful")

    assert refused.value.status == 403
    message = status_body(refused)["message"]
    assert message.startswith('rolebindings.rbac.authorization.k8s.io "new-binding" is forbidden:')
    assert "is attempting to grant RBAC permissions not currently held" in message


def test_bind_allows_binding_role_beyond_held_permissions(
    kubesim: KubesimHandle, alice_rbac: client.RbacAuthorizationV1Api
) -> None:
    bind = rule("bind", "roles", groups=RBAC, names="powerful")
    kubesim.apply(
        [*alice_role(ROLE_WRITER, bind), role("payments", "powerful", rule("*", "secrets"))]
    )

    _create_binding(alice_rbac, "Role/powerful")

    binding = alice_rbac.read_namespaced_role_binding("new-binding", "payments")
    assert binding.role_ref.name == "powerful"


def test_binding_to_missing_role_without_bind_is_not_found(
    kubesim: KubesimHandle, alice_rbac: client.RbacAuthorizationV1Api
) -> None:
    # Upstream's rolebinding storage returns the role lookup's NotFound unwrapped.
    kubesim.apply(list(alice_role(ROLE_WRITER, rule("get", "pods"))))

    with pytest.raises(ApiException) as refused:
        _create_binding(alice_rbac, "Role/not-yet")

    assert refused.value.status == 404
    status = status_body(refused)
    assert status["reason"] == "NotFound"
    assert status["message"] == 'roles.rbac.authorization.k8s.io "not-yet" not found'


def test_scangate_grant_flow_gives_exactly_the_named_pods(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    # The chart: scangate holds the profile permissions in the target namespace, with no
    # bind or escalate; it creates the grant Role, then the RoleBinding to the grant's SA.
    kubesim_tls.apply(
        [
            cluster_role(
                "scangate-target",
                rule("get", "pods"),
                rule("create get", "pods/exec"),
                rule("get", "pods/log"),
                ROLE_WRITER,
            ),
            role_binding(
                "payments",
                "scangate",
                "ClusterRole/scangate-target",
                service_account("scangate", GRANTS_NS),
            ),
        ]
    )
    scangate_token = service_account_token(kubesim_tls, GRANTS_NS, "scangate")
    grant_token = service_account_token(kubesim_tls, GRANTS_NS, "scangate-x")
    names = "web-0 web-1"
    with user_client(kubesim_tls, scangate_token) as api_client:
        scangate = client.RbacAuthorizationV1Api(api_client)
        body: Any = {
            "metadata": {"name": "scangate-x"},
            "rules": [
                rule("get", "pods", names=names),
                rule("create get", "pods/exec", names=names),
                rule("get", "pods/log", names=names),
            ],
        }
        scangate.create_namespaced_role("payments", body)
        _create_binding(scangate, "Role/scangate-x")
    kubeconfig = write_kubeconfig(kubesim_tls, grant_token, tmp_path / "grant.kubeconfig")

    assert kubectl_can_i(kubeconfig, ask("create", "pods/exec", "web-0"))
    assert not kubectl_can_i(kubeconfig, ask("create", "pods/exec", "web-2"))
    assert not kubectl_can_i(kubeconfig, ask("list", "pods"))
    listing = kubectl(kubeconfig, "auth", "can-i", "--list", "--namespace", "payments")
    # kubectl prints one row per (resource, name); the grant lists exactly the two pods.
    exec_rows = [line for line in listing.stdout.splitlines() if line.startswith("pods/exec ")]
    # Columns after the resource: [non-resource URLs] [resource names] [verbs].
    listed = sorted(re.findall(r"\[([^\]]*)\]", row)[1] for row in exec_rows)
    assert listed == ["web-0", "web-1"]
