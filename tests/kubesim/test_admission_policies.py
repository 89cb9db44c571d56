"""kubesim evaluates ValidatingAdmissionPolicy as kube-apiserver does: which requests a policy
and its binding select, what CEL sees, and the status, message and headers of each outcome.

Expected texts and codes are kube-apiserver's (apiserver/pkg/admission/plugin/policy/validating:
`<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with binding '<b>' denied
request: <message>`, reason Invalid → 422 unless the validation names another reason).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubesim.pytest_plugin import KubesimHandle

ADMISSION = "/apis/admissionregistration.k8s.io/v1"
ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789"


class Cluster:
    """Raw HTTP to kubesim as the admin, alice or bob (all in system:masters, so RBAC stays
    out of the way: admission policies apply to cluster admins too)."""

    def __init__(self, handle: KubesimHandle) -> None:
        self.handle = handle
        handle.add_user_token(ALICE, "alice", ["system:masters"])
        handle.add_user_token(BOB, "bob", ["system:masters"])

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.handle.admin_token}"}
        if body is not None:
            content_type = kw.pop("content_type", "application/json")
            headers["Content-Type"] = content_type
            kw["content"] = json.dumps(body)
        with httpx.Client(base_url=self.handle.url, trust_env=False, timeout=30) as http:
            return http.request(method, path, headers=headers, **kw)

    def install(self, policy: dict[str, Any], binding: dict[str, Any] | None = None) -> None:
        created = self.request("POST", f"{ADMISSION}/validatingadmissionpolicies", policy)
        assert created.status_code == 201, created.text
        if binding is not None:
            made = self.request("POST", f"{ADMISSION}/validatingadmissionpolicybindings", binding)
            assert made.status_code == 201, made.text

    def create_configmap(
        self, name: str, labels: dict[str, str] | None = None, ns: str = "payments", **kw: Any
    ) -> httpx.Response:
        body = {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": "v"}}
        return self.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body, **kw)


@pytest.fixture
def cluster(kubesim: KubesimHandle) -> Cluster:
    return Cluster(kubesim)


def policy(
    name: str = "demo",
    validations: list[dict[str, Any]] | None = None,
    *,
    resources: list[str] | None = None,
    operations: list[str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    rule = {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": operations or ["CREATE", "UPDATE"],
        "resources": resources or ["configmaps"],
    }
    body: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {"resourceRules": [rule]},
            "validations": validations
            or [{"expression": "object.metadata.name.startsWith('ok-')"}],
            **spec,
        },
    }
    return body


def binding(
    name: str = "demo-binding",
    policy_name: str = "demo",
    actions: list[str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": policy_name, "validationActions": actions or ["Deny"], **spec},
    }


def denial(resource: str, name: str, message: str, p: str = "demo", b: str = "demo-binding") -> str:
    return (
        f"{resource} \"{name}\" is forbidden: ValidatingAdmissionPolicy '{p}' with binding "
        f"'{b}' denied request: {message}"
    )


# --- the kinds themselves -------------------------------------------------------------------


def test_policies_and_bindings_are_served_with_the_apiservers_defaults(cluster: Cluster) -> None:
    cluster.install(policy(), binding(matchResources={}))
    stored = cluster.request("GET", f"{ADMISSION}/validatingadmissionpolicies/demo").json()
    assert stored["spec"]["failurePolicy"] == "Fail"
    constraints = stored["spec"]["matchConstraints"]
    assert constraints["matchPolicy"] == "Equivalent"
    assert constraints["namespaceSelector"] == {}
    assert constraints["objectSelector"] == {}
    assert constraints["resourceRules"][0]["scope"] == "*"
    assert stored["metadata"]["generation"] == 1
    listed = cluster.request("GET", f"{ADMISSION}/validatingadmissionpolicybindings").json()
    assert [b["metadata"]["name"] for b in listed["items"]] == ["demo-binding"]
    resources = cluster.request("GET", ADMISSION).json()["resources"]
    served = {r["name"]: r["namespaced"] for r in resources}
    assert served["validatingadmissionpolicies"] is False
    assert served["validatingadmissionpolicybindings"] is False
    assert "validatingadmissionpolicies/status" in served


@pytest.mark.parametrize(
    ("spec_change", "cause"),
    [
        ({"validations": []}, "spec.validations: Required value: validations or auditAnnotations"),
        (
            {"validations": [{"expression": "object.metadata.name.startsWith("}]},
            'spec.validations[0].expression: Invalid value: "object.metadata.name.startsWith("'
            ": compilation failed: ",
        ),
        ({"validations": [{"expression": " "}]}, "spec.validations[0].expression: Required value"),
        (
            {"validations": [{"expression": "objekt.metadata.name == 'a'"}]},
            "compilation failed: undeclared reference to 'objekt'",
        ),
        (
            {
                "validations": [
                    {"expression": "true", "messageExpression": "authorizer.path('/').check('get')"}
                ]
            },
            "spec.validations[0].messageExpression: Invalid value: \"authorizer.path('/')"
            ".check('get')\": compilation failed: undeclared reference to 'authorizer'",
        ),
        (
            {"validations": [{"expression": "true", "reason": "Gone"}]},
            'spec.validations[0].reason: Unsupported value: "Gone": supported values: '
            '"Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized"',
        ),
        ({"failurePolicy": "Maybe"}, 'spec.failurePolicy: Unsupported value: "Maybe"'),
        ({"matchConstraints": None}, "spec.matchConstraints: Required value"),
        (
            {"matchConstraints": {"resourceRules": []}},
            "spec.matchConstraints.resourceRules: Required value",
        ),
        (
            {"matchConditions": [{"name": "", "expression": "true"}]},
            "spec.matchConditions[0].name: Required value",
        ),
        (
            {"variables": [{"name": "not-an-ident", "expression": "1"}]},
            'spec.variables[0].name: Invalid value: "not-an-ident": name is not a valid CEL '
            "identifier",
        ),
    ],
    ids=[
        "no-validations",
        "cel-syntax",
        "empty-expression",
        "undeclared-variable",
        "authorizer-in-message",
        "reason",
        "failure-policy",
        "no-match-constraints",
        "no-resource-rules",
        "match-condition-name",
        "variable-name",
    ],
)
def test_an_invalid_policy_is_refused_with_the_field_named(
    cluster: Cluster, spec_change: dict[str, Any], cause: str
) -> None:
    body = policy()
    body["spec"].update(spec_change)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    refused = cluster.request("POST", f"{ADMISSION}/validatingadmissionpolicies", body)
    assert refused.status_code == 422, refused.text
    status = refused.json()
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(
        'ValidatingAdmissionPolicy.admissionregistration.k8s.io "demo" is invalid: '
    )
    assert any(cause in c["field"] + ": " + c["message"] for c in status["details"]["causes"])


@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        ({"validationActions": []}, "spec.validationActions: Required value: at least one"),
        ({"policyName": ""}, "spec.policyName: Required value"),
        (
            {"validationActions": ["Deny", "Warn"]},
            "must not contain both Deny and Warn (repeating the same validation failure",
        ),
        ({"validationActions": ["Audit", "Audit"]}, "spec.validationActions[1]: Duplicate value"),
        ({"validationActions": ["Block"]}, 'spec.validationActions[0]: Unsupported value: "Block"'),
    ],
    ids=["no-actions", "no-policy-name", "deny-and-warn", "duplicate", "unknown-action"],
)
def test_an_invalid_binding_is_refused_with_the_field_named(
    cluster: Cluster, spec: dict[str, Any], cause: str
) -> None:
    body = binding()
    body["spec"].update(spec)
    refused = cluster.request("POST", f"{ADMISSION}/validatingadmissionpolicybindings", body)
    assert refused.status_code == 422, refused.text
    causes = refused.json()["details"]["causes"]
    assert any(cause in c["field"] + ": " + c["message"] for c in causes), causes


# --- outcomes -------------------------------------------------------------------------------


def test_a_failed_validation_denies_with_the_expression_as_message_and_422(
    cluster: Cluster,
) -> None:
    cluster.install(policy(), binding())
    refused = cluster.create_configmap("settings")
    assert refused.status_code == 422, refused.text
    status = refused.json()
    message = denial(
        "configmaps", "settings", "failed expression: object.metadata.name.startsWith('ok-')"
    )
    assert status["message"] == message
    assert status["reason"] == "Invalid"
    assert status["details"] == {
        "name": "settings",
        "kind": "configmaps",
        "causes": [{"message": message.split(" is forbidden: ", 1)[1]}],
    }
    assert cluster.create_configmap("ok-settings").status_code == 201
    stored = cluster.request("GET", "/api/v1/namespaces/payments/configmaps/settings")
    assert stored.status_code == 404


def test_the_reason_and_message_of_a_validation_shape_the_denial(cluster: Cluster) -> None:
    validations = [
        {"expression": "size(object.data) < 5", "message": "too many keys"},
        {
            "expression": "object.metadata.name.startsWith('ok-')",
            "message": "static",
            "messageExpression": "'name ' + object.metadata.name + ' lacks the ok- prefix'",
            "reason": "Forbidden",
        },
    ]
    cluster.install(policy(validations=validations), binding())
    refused = cluster.create_configmap("settings")
    assert refused.status_code == 403, refused.text
    assert refused.json()["reason"] == "Forbidden"
    assert refused.json()["message"] == denial(
        "configmaps", "settings", "name settings lacks the ok- prefix"
    )


def test_a_message_expression_that_fails_falls_back_to_the_message(cluster: Cluster) -> None:
    validations = [
        {"expression": "false", "message": "  fixed text  ", "messageExpression": "object.nope"}
    ]
    cluster.install(policy(validations=validations), binding())
    refused = cluster.create_configmap("anything")
    assert refused.json()["message"] == denial("configmaps", "anything", "fixed text")


def test_warn_answers_with_a_warning_header_and_audit_with_nothing(cluster: Cluster) -> None:
    cluster.install(policy(name="warned"), binding("warned-binding", "warned", ["Warn"]))
    cluster.install(policy(name="audited"), binding("audited-binding", "audited", ["Audit"]))
    created = cluster.create_configmap("settings")
    assert created.status_code == 201, created.text
    assert created.headers.get_list("warning") == [
        "299 - \"Validation failed for ValidatingAdmissionPolicy 'warned' with binding "
        "'warned-binding': failed expression: object.metadata.name.startsWith('ok-')\""
    ]


def test_a_policy_without_a_binding_does_nothing(cluster: Cluster) -> None:
    cluster.install(policy())
    assert cluster.create_configmap("settings").status_code == 201


def test_match_conditions_select_the_requests_of_one_user(cluster: Cluster) -> None:
    conditions = [{"name": "alice-only", "expression": "request.userInfo.username == 'alice'"}]
    cluster.install(policy(matchConditions=conditions), binding())
    assert cluster.create_configmap("by-bob", token=BOB).status_code == 201
    refused = cluster.create_configmap("by-alice", token=ALICE)
    assert refused.status_code == 422
    assert "failed expression" in refused.json()["message"]


def test_the_request_variable_describes_the_request(cluster: Cluster) -> None:
    expression = (
        "request.operation == 'CREATE' && request.namespace == 'payments' && "
        "request.name == 'ok-a' && request.resource.resource == 'configmaps' && "
        "request.resource.version == 'v1' && request.kind.kind == 'ConfigMap' && "
        "'system:masters' in request.userInfo.groups && request.userInfo.username == 'bob' && "
        "namespaceObject.metadata.name == 'payments' && oldObject == null"
    )
    cluster.install(policy(validations=[{"expression": expression}]), binding())
    created = cluster.create_configmap("ok-a", token=BOB)
    assert created.status_code == 201, created.text


def test_variables_are_bound_in_order_and_read_as_variables_dot_name(cluster: Cluster) -> None:
    variables = [
        {"name": "name", "expression": "object.metadata.name"},
        {"name": "prefixed", "expression": "variables.name.startsWith('ok-')"},
    ]
    validations = [{"expression": "variables.prefixed", "messageExpression": "variables.name"}]
    cluster.install(policy(validations=validations, variables=variables), binding())
    assert cluster.create_configmap("ok-1").status_code == 201
    assert cluster.create_configmap("nope").json()["message"] == denial(
        "configmaps", "nope", "nope"
    )


def test_an_evaluation_error_denies_under_fail_and_is_ignored_under_ignore(
    cluster: Cluster,
) -> None:
    validations = [{"expression": "object.metadata.annotations['team'] == 'a'"}]
    cluster.install(policy(name="strict", validations=validations), binding("b1", "strict"))
    refused = cluster.create_configmap("settings")
    assert refused.status_code == 422
    assert refused.json()["message"] == denial(
        "configmaps",
        "settings",
        "expression 'object.metadata.annotations['team'] == 'a'' resulted in error: "
        "no such key: annotations",
        "strict",
        "b1",
    )
    cluster.request("DELETE", f"{ADMISSION}/validatingadmissionpolicies/strict")
    cluster.install(
        policy(name="lenient", validations=validations, failurePolicy="Ignore"),
        binding("b2", "lenient"),
    )
    assert cluster.create_configmap("settings").status_code == 201


def test_a_binding_narrows_by_namespace_and_object_labels(cluster: Cluster) -> None:
    narrowing = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}},
        "objectSelector": {
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]
        },
    }
    cluster.install(policy(), binding(matchResources=narrowing))
    assert cluster.create_configmap("a", {"tier": "x"}, ns="orders").status_code == 201
    assert cluster.create_configmap("b", {"tier": "y"}).status_code == 201
    assert cluster.create_configmap("c", {"tier": "x"}).status_code == 422


def test_resource_names_and_exclude_rules_narrow_the_match(cluster: Cluster) -> None:
    body = policy()
    rule = body["spec"]["matchConstraints"]["resourceRules"][0]
    rule["resourceNames"] = ["guarded", "excluded"]
    body["spec"]["matchConstraints"]["excludeResourceRules"] = [
        {**rule, "resourceNames": ["excluded"]}
    ]
    cluster.install(body, binding())
    assert cluster.create_configmap("free").status_code == 201
    assert cluster.create_configmap("excluded").status_code == 201
    assert cluster.create_configmap("guarded").status_code == 422


def test_updates_see_the_old_object_and_no_op_updates_are_still_admitted(
    cluster: Cluster,
) -> None:
    assert cluster.create_configmap("settings").status_code == 201
    validations = [{"expression": "object.data == oldObject.data", "message": "data is frozen"}]
    cluster.install(policy(validations=validations), binding())
    path = "/api/v1/namespaces/payments/configmaps/settings"
    patch = {"data": {"k": "changed"}}
    refused = cluster.request("PATCH", path, patch, content_type="application/merge-patch+json")
    assert refused.status_code == 422
    assert refused.json()["message"] == denial("configmaps", "settings", "data is frozen")
    relabel = {"metadata": {"labels": {"x": "y"}}}
    ok = cluster.request("PATCH", path, relabel, content_type="application/merge-patch+json")
    assert ok.status_code == 200, ok.text
    # A policy on labels refuses even an update that changes nothing.
    cluster.install(
        policy("labels", [{"expression": "!has(object.metadata.labels)"}]),
        binding("labels-binding", "labels"),
    )
    current = cluster.request("GET", path).json()
    same = cluster.request("PUT", path, current)
    assert same.status_code == 422
    assert "ValidatingAdmissionPolicy 'labels'" in same.json()["message"]


def test_deletes_are_admitted_with_the_old_object(cluster: Cluster) -> None:
    for name in ("keep-me", "drop-me"):
        assert cluster.create_configmap(name, {"keep": str(name == "keep-me").lower()}).is_success
    validations = [{"expression": "object == null && oldObject.metadata.labels['keep'] != 'true'"}]
    cluster.install(policy(validations=validations, operations=["DELETE"]), binding())
    path = "/api/v1/namespaces/payments/configmaps/"
    refused = cluster.request("DELETE", path + "keep-me")
    assert refused.status_code == 422
    assert refused.json()["message"] == denial(
        "configmaps", "keep-me", f"failed expression: {validations[0]['expression']}"
    )
    assert cluster.request("DELETE", path + "drop-me").status_code == 200
    assert cluster.request("GET", path + "keep-me").status_code == 200


def test_exec_and_attach_are_admitted_as_connect_with_their_options(cluster: Cluster) -> None:
    validations = [
        {
            "expression": "object.kind == 'PodAttachOptions' || "
            "object.command == ['cat', '/etc/os-release']",
            "message": "only os-release",
            "reason": "Forbidden",
        }
    ]
    cluster.install(
        policy(
            validations=validations,
            operations=["CONNECT"],
            resources=["pods/exec", "pods/attach"],
        ),
        binding(),
    )
    path = "/api/v1/namespaces/payments/pods/web-0/exec"
    query = "?container=app&stdout=true&command=sh&command=-c&command=id"
    refused = cluster.request("POST", path + query)
    assert refused.status_code == 403
    assert refused.json()["message"] == denial("pods", "web-0", "only os-release")
    allowed = cluster.request("POST", path + "?container=app&command=cat&command=/etc/os-release")
    # Admitted: what follows is exec's own answer to a request without an upgrade.
    assert allowed.status_code == 400
    assert allowed.json()["message"] == "Upgrade request required"


def test_ephemeral_container_updates_are_admitted_on_their_subresource(cluster: Cluster) -> None:
    cluster.install(
        policy(
            validations=[{"expression": "false", "message": "no debug containers"}],
            operations=["UPDATE"],
            resources=["pods/ephemeralcontainers"],
        ),
        binding(),
    )
    patch = {
        "spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox", "command": ["sh"]}]}
    }
    path = "/api/v1/namespaces/payments/pods/web-0/ephemeralcontainers"
    refused = cluster.request(
        "PATCH", path, patch, content_type="application/strategic-merge-patch+json"
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["message"] == denial("pods", "web-0", "no debug containers")
    # The pod itself (no subresource) is not what the rule names.
    relabel = {"metadata": {"labels": {"a": "b"}}}
    pod = cluster.request(
        "PATCH", "/api/v1/namespaces/payments/pods/web-0", relabel,
        content_type="application/merge-patch+json",
    )  # fmt: skip
    assert pod.status_code == 200


def test_the_authorizer_checks_access_with_rbac(cluster: Cluster) -> None:
    default_sa = "authorizer.serviceAccount('payments', 'default')"
    # messageExpression has no authorizer (as upstream): the reason comes through a variable.
    variables = [
        {
            "name": "why",
            "expression": f"{default_sa}.group('').resource('configmaps')"
            ".namespace(request.namespace).check('get').reason()",
        }
    ]
    validations = [
        {
            "expression": "authorizer.requestResource.check('delete').allowed() && "
            "authorizer.group('').resource('secrets').namespace('payments').check('get')"
            ".allowed()",
            "message": "the requester may not manage it",
        },
        {
            "expression": f"{default_sa}.group('').resource('configmaps')"
            ".namespace(request.namespace).name(object.metadata.name).check('get').allowed()",
            "messageExpression": "'default cannot read it: ' + variables.why",
        },
    ]
    cluster.install(policy(validations=validations, variables=variables), binding())
    refused = cluster.create_configmap("settings", token=BOB)
    assert refused.status_code == 422, refused.text
    message = refused.json()["message"]
    # bob (system:masters) passes the first; the default ServiceAccount has no RBAC rights
    # (RBAC gives no reason for "no rule matched"; the message is trimmed).
    assert message == denial("configmaps", "settings", "default cannot read it:")
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "default-views"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "payments"}],
    }
    path = "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings"
    assert cluster.request("POST", path, reader).status_code == 201
    assert cluster.create_configmap("settings", token=BOB).status_code == 201


def test_kubectl_applies_policies_lists_them_and_prints_denials_and_warnings(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    manifests = tmp_path / "policies.yaml"
    documents = [
        policy(),
        binding(),
        policy(name="warned", validations=[{"expression": "false", "message": "just so you know"}]),
        binding("warned-binding", "warned", ["Warn"]),
    ]
    manifests.write_text(yaml.safe_dump_all(documents))
    config = str(kubesim_tls.admin_kubeconfig)

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", config, "--request-timeout=10s", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    applied = kubectl("apply", "-f", str(manifests))
    assert applied.returncode == 0, applied.stderr
    assert "validatingadmissionpolicy.admissionregistration.k8s.io/demo created" in applied.stdout
    listed = kubectl("get", "validatingadmissionpolicies", "-o", "name")
    assert listed.stdout.split() == [
        "validatingadmissionpolicy.admissionregistration.k8s.io/demo",
        "validatingadmissionpolicy.admissionregistration.k8s.io/warned",
    ]

    def configmap(name: str) -> str:
        path = tmp_path / f"{name}.yaml"
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
        path.write_text(yaml.safe_dump(body))
        return str(path)

    # kubectl's own `create configmap` speaks protobuf, which kubesim refuses; -f sends JSON.
    refused = kubectl("-n", "payments", "create", "-f", configmap("settings"))
    assert refused.returncode == 1
    # What kubectl prints for the apiserver's 422 (an Invalid status whose one cause has no
    # field), as the Kubernetes documentation shows it.
    assert refused.stderr == (
        "The configmaps \"settings\" is invalid: : ValidatingAdmissionPolicy 'demo' with binding "
        "'demo-binding' denied request: failed expression: "
        "object.metadata.name.startsWith('ok-')\n"
    )
    created = kubectl("-n", "payments", "create", "-f", configmap("ok-settings"))
    assert created.returncode == 0, created.stderr
    assert (
        "Warning: Validation failed for ValidatingAdmissionPolicy 'warned' with binding "
        "'warned-binding': just so you know"
    ) in created.stderr
