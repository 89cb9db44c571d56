"""ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding as kinds: served, defaulted
and validated as kube-apiserver does, usable with kubectl, and never judged by policies."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesim.pytest_plugin import KubesimHandle
from tests.kubesim.policy_support import (
    ADMISSION,
    Cluster,
    binding,
    policy,
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
            {
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods/*", "pods/exec"],
                            "resourceNames": ["web-0", "web-0", "a/b"],
                        }
                    ]
                }
            },
            [
                "spec.matchConstraints.resourceRules[0].resources[1]: Invalid value: "
                "\"pods/exec\": if 'pods/*' is present, must not specify pods/exec",
                'spec.matchConstraints.resourceRules[0].resourceNames[1]: Duplicate value: "web-0"',
                "spec.matchConstraints.resourceRules[0].resourceNames[2]: Invalid value: "
                "\"a/b\": may not contain '/'",
            ],
        ),
        (
            {"matchConditions": [{"name": "Bad Name", "expression": "true"}] * 2},
            [
                'spec.matchConditions[0].name: Invalid value: "Bad Name": name part must consist',
                'spec.matchConditions[1].name: Duplicate value: "Bad Name"',
            ],
        ),
        (
            {"matchConditions": [{"name": f"c{i}", "expression": "true"} for i in range(65)]},
            "spec.matchConditions: Too many: 65: must have at most 64 items",
        ),
        (
            {
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ],
                    "objectSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]},
                }
            },
            "spec.matchConstraints.objectSelector.matchExpressions[0].operator: Invalid value: "
            '"Near": not a valid selector operator',
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
        "rule-resources-and-names",
        "match-condition-qualified-unique-name",
        "too-many-match-conditions",
        "selector-operator",
        "variable-name",
    ],
)
def test_an_invalid_policy_is_refused_with_the_field_named(
    cluster: Cluster, spec_change: dict[str, Any], cause: str | list[str]
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
    shown = [c["field"] + ": " + c["message"] for c in status["details"]["causes"]]
    for expected in [cause] if isinstance(cause, str) else cause:
        assert any(expected in line for line in shown), (expected, shown)


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


def test_policies_never_judge_policies_or_bindings(cluster: Cluster) -> None:
    # A policy denying every write of every admissionregistration resource cannot lock out
    # the policies themselves.
    body = policy(validations=[{"expression": "false"}], operations=["*"])
    body["spec"]["matchConstraints"]["resourceRules"][0].update(
        {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["*"]}
    )
    cluster.install(body, binding())
    deleted = cluster.request(
        "DELETE", f"{ADMISSION}/validatingadmissionpolicybindings/demo-binding"
    )
    assert deleted.status_code == 200, deleted.text
    assert cluster.request("DELETE", f"{ADMISSION}/validatingadmissionpolicies/demo").is_success
