"""Protobuf request bodies, as kubectl's typed clients and Helm's release storage send them.

kube-apiserver reads `application/vnd.kubernetes.protobuf` for every built-in kind; Go clients
send it for create and update (and Accept JSON as well). These tests drive the real kubectl and
check what was stored, then hand-build bodies for the corners.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from kubesim.pytest_plugin import KubesimHandle

_PROTOBUF = "application/vnd.kubernetes.protobuf"


def _posts(handle: KubesimHandle, resource: str) -> list[dict[str, Any]]:
    return [r for r in handle.requests() if r["method"] == "POST" and r["resource"] == resource]


def test_kubectl_create_role_and_rolebinding_send_protobuf_and_are_stored(
    kubesim_tls: KubesimHandle, run_kubectl: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    kubeconfig = kubesim_tls.admin_kubeconfig
    role = run_kubectl(
        kubeconfig, "-n", "payments", "create", "role", "reader",
        "--verb=get,list", "--resource=pods,pods/log", "--resource-name=web-0",
    )  # fmt: skip
    binding = run_kubectl(
        kubeconfig, "-n", "payments", "create", "rolebinding", "reader",
        "--role=reader", "--user=bob", "--group=auditors",
        "--serviceaccount=scangate-grants:scanner",
    )  # fmt: skip

    assert role.returncode == 0, role.stderr
    assert binding.returncode == 0, binding.stderr
    assert [r["content_type"] for r in _posts(kubesim_tls, "roles")] == [_PROTOBUF]
    assert [r["content_type"] for r in _posts(kubesim_tls, "rolebindings")] == [_PROTOBUF]
    with kubesim_tls.admin_client() as api:
        rbac = client.RbacAuthorizationV1Api(api)
        stored_role = rbac.read_namespaced_role("reader", "payments")
        stored_binding = rbac.read_namespaced_role_binding("reader", "payments")
    [rule] = stored_role.rules
    assert (rule.api_groups, rule.resources, rule.verbs, rule.resource_names) == (
        [""],
        ["pods", "pods/log"],
        ["get", "list"],
        ["web-0"],
    )
    assert stored_binding.role_ref.to_dict() == {
        "api_group": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "reader",
    }
    assert [(s.kind, s.api_group, s.name, s.namespace) for s in stored_binding.subjects] == [
        ("User", "rbac.authorization.k8s.io", "bob", None),
        ("Group", "rbac.authorization.k8s.io", "auditors", None),
        ("ServiceAccount", None, "scanner", "scangate-grants"),
    ]


def test_kubectl_creates_cluster_rbac_namespaces_secrets_configmaps_and_service_accounts(
    kubesim_tls: KubesimHandle, run_kubectl: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    kubeconfig = kubesim_tls.admin_kubeconfig
    commands = [
        ["create", "namespace", "audit"],
        ["create", "clusterrole", "ns-reader", "--verb=get", "--resource=namespaces"],
        ["create", "clusterrolebinding", "node-reader", "--clusterrole=ns-reader", "--user=x"],
        ["-n", "audit", "create", "secret", "generic", "creds", "--from-literal=key=s3cr3t"],
        ["-n", "audit", "create", "configmap", "settings", "--from-literal=mode=strict"],
        ["-n", "audit", "create", "serviceaccount", "scanner"],
    ]
    for command in commands:
        result = run_kubectl(kubeconfig, *command)
        assert result.returncode == 0, (command, result.stderr)

    sent = {
        r["resource"]: r["content_type"] for r in kubesim_tls.requests() if r["method"] == "POST"
    }
    assert set(sent.values()) == {_PROTOBUF}
    with kubesim_tls.admin_client() as api:
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        assert core.read_namespace("audit").status.phase == "Active"
        assert rbac.read_cluster_role("ns-reader").rules[0].resources == ["namespaces"]
        assert rbac.read_cluster_role_binding("node-reader").role_ref.name == "ns-reader"
        secret = core.read_namespaced_secret("creds", "audit")
        assert base64.b64decode(secret.data["key"]) == b"s3cr3t"
        assert secret.type == "Opaque"
        assert core.read_namespaced_config_map("settings", "audit").data == {"mode": "strict"}
        assert core.read_namespaced_service_account("scanner", "audit").metadata.uid


def test_protobuf_escalation_is_checked_on_the_decoded_rules(
    kubesim_tls: KubesimHandle,
    run_kubectl: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    # A user who may create roles but holds no pod permissions cannot create one granting them:
    # the rules decoded from protobuf are what the escalation check sees.
    kubesim_tls.add_user_token("creator-token", "creator", [])
    kubesim_tls.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "role-writer", "namespace": "payments"},
                "rules": [
                    {
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "resources": ["roles"],
                        "verbs": ["create"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "role-writer", "namespace": "payments"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "role-writer",
                },
                "subjects": [{"kind": "User", "name": "creator"}],
            },
        ]
    )
    kubeconfig = kubesim_tls.token_kubeconfig("creator-token", tmp_path / "kc", "payments")

    result = run_kubectl(kubeconfig, "create", "role", "x", "--verb=get", "--resource=pods")

    assert result.returncode == 1
    assert "is attempting to grant RBAC permissions not currently held" in result.stderr
    assert '{APIGroups:[""], Resources:["pods"], Verbs:["get"]}' in result.stderr


# --- hand-built bodies -------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw)


def _post(http: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return http.post(path, content=body, headers={"Content-Type": _PROTOBUF})


def test_secret_with_binary_data_and_immutable_false(admin_http: httpx.Client) -> None:
    meta = _field(1, b"blob") + _field(11, _field(1, b"app") + _field(2, b"x"))
    data_entry = _field(1, b"bin") + _field(2, b"\x00\xff\x10")
    raw = _field(1, meta) + _field(2, data_entry) + _field(3, b"Opaque") + _field(5, 0)

    response = _post(
        admin_http, "/api/v1/namespaces/payments/secrets", _envelope("v1", "Secret", raw)
    )

    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["data"] == {"bin": base64.b64encode(b"\x00\xff\x10").decode()}
    assert stored["metadata"]["labels"] == {"app": "x"}
    # A Go pointer field is present even at its zero value.
    assert stored["immutable"] is False


def test_kind_without_a_protobuf_schema_is_unsupported(admin_http: httpx.Client) -> None:
    raw = _field(1, _field(1, b"claim"))

    response = _post(
        admin_http,
        "/api/v1/namespaces/payments/persistentvolumeclaims",
        _envelope("v1", "PersistentVolumeClaim", raw),
    )

    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


def test_unknown_field_is_refused_rather_than_dropped(admin_http: httpx.Client) -> None:
    raw = _field(1, _field(1, b"cm")) + _field(9, b"surprise")

    response = _post(
        admin_http, "/api/v1/namespaces/payments/configmaps", _envelope("v1", "ConfigMap", raw)
    )

    assert response.status_code == 415
    assert "field number 9" in response.json()["message"]


def test_truncated_protobuf_is_a_bad_request(admin_http: httpx.Client) -> None:
    body = _envelope("v1", "ConfigMap", _field(1, _field(1, b"cm")))[:-3]

    response = _post(admin_http, "/api/v1/namespaces/payments/configmaps", body)

    assert response.status_code == 400
    assert "could not be decoded" in response.json()["message"]


def test_delete_options_in_protobuf_carry_their_preconditions(admin_http: httpx.Client) -> None:
    wrong_uid = _field(2, _field(1, b"not-the-uid"))
    body = _envelope("v1", "DeleteOptions", wrong_uid + _field(4, b"Background"))

    refused = admin_http.request(
        "DELETE",
        "/api/v1/namespaces/payments/secrets/db-credentials",
        content=body,
        headers={"Content-Type": _PROTOBUF},
    )
    deleted = admin_http.request(
        "DELETE",
        "/api/v1/namespaces/payments/secrets/db-credentials",
        content=_envelope("v1", "DeleteOptions", _field(4, b"Background")),
        headers={"Content-Type": _PROTOBUF},
    )

    assert refused.status_code == 409
    assert "not-the-uid" in refused.json()["message"]
    assert deleted.status_code == 200


@pytest.mark.parametrize(
    ("kind", "name", "args"),
    [
        ("service", "web", ["service", "clusterip", "web", "--tcp=80:8080", "--tcp=443:https"]),
        ("service", "edge", ["service", "nodeport", "edge", "--tcp=80:8080", "--node-port=30080"]),
        ("pdb", "web", ["pdb", "web", "--selector=app=web,tier in (a,b)", "--min-available=50%"]),
        ("pdb", "db", ["pdb", "db", "--selector=app=db", "--max-unavailable=1"]),
        (
            "deployment",
            "web",
            ["deployment", "web", "--image=nginx:1.27", "--replicas=3", "--port=8080"],
        ),
        ("deployment", "pair", ["deployment", "pair", "--image=a:1", "--image=b:2"]),
    ],
)
def test_kubectl_created_services_budgets_and_deployments_keep_what_kubectl_meant(
    kubesim_tls: KubesimHandle,
    run_kubectl: Callable[..., subprocess.CompletedProcess[str]],
    kind: str,
    name: str,
    args: list[str],
) -> None:
    # kubectl's client-side dry run prints the object it would send; the protobuf it does
    # send must arrive as that object.
    kubeconfig = kubesim_tls.admin_kubeconfig
    meant = run_kubectl(
        kubeconfig, "-n", "payments", "create", *args, "--dry-run=client", "-o", "json"
    )
    created = run_kubectl(kubeconfig, "-n", "payments", "create", *args)
    stored = run_kubectl(kubeconfig, "-n", "payments", "get", kind, name, "-o", "json")

    assert created.returncode == 0, created.stderr
    assert [r["content_type"] for r in kubesim_tls.requests() if r["method"] == "POST"] == [
        _PROTOBUF
    ]
    meant_spec = json.loads(meant.stdout)["spec"]
    stored_spec = json.loads(stored.stdout)["spec"]
    if "template" in meant_spec:
        # Client-side output shows `creationTimestamp: null`, which the wire never carries.
        meant_spec["template"]["metadata"].pop("creationTimestamp", None)
    assert {k: stored_spec.get(k) for k in meant_spec} == meant_spec


def test_pod_with_embedded_references_and_repeated_integers(admin_http: httpx.Client) -> None:
    # Go embeds LocalObjectReference (its `name` sits in the parent's JSON), and a repeated
    # int64 such as supplementalGroups comes one varint per entry.
    secret_ref = _field(4, _field(1, _field(1, b"db-credentials")) + _field(2, b"password"))
    env = _field(1, b"PASSWORD") + _field(3, secret_ref)
    container = _field(1, b"app") + _field(2, b"registry.example/app:1") + _field(7, env)
    config_volume = _field(1, b"settings") + _field(2, _field(19, _field(1, _field(1, b"cm"))))
    security = _field(4, 1000) + _field(4, 2000) + _field(2, 1000)
    spec = _field(1, config_volume) + _field(2, container) + _field(14, security)
    # Go writes a value-typed status with its empty strings; a create resets it anyway.
    status = _field(1, b"Running") + _field(3, b"") + _field(5, b"") + _field(11, b"")
    raw = _field(1, _field(1, b"proto-pod")) + _field(2, spec) + _field(3, status)

    response = _post(admin_http, "/api/v1/namespaces/payments/pods", _envelope("v1", "Pod", raw))

    assert response.status_code == 201, response.text
    pod = response.json()
    [container_json] = pod["spec"]["containers"]
    assert container_json["env"] == [
        {
            "name": "PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}},
        }
    ]
    assert pod["spec"]["volumes"] == [{"name": "settings", "configMap": {"name": "cm"}}]
    assert pod["spec"]["securityContext"] == {"supplementalGroups": [1000, 2000], "runAsUser": 1000}
    assert pod["status"]["phase"] == "Pending"


def test_pod_field_outside_the_schema_is_refused(admin_http: httpx.Client) -> None:
    # Affinity (PodSpec field 18) is not read from protobuf: a 415 naming it, never dropped.
    container = _field(1, b"app") + _field(2, b"app:1")
    spec = _field(2, container) + _field(18, b"")
    raw = _field(1, _field(1, b"affine")) + _field(2, spec)

    response = _post(admin_http, "/api/v1/namespaces/payments/pods", _envelope("v1", "Pod", raw))

    assert response.status_code == 415
    assert "field number 18" in response.json()["message"]
