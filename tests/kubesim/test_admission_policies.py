"""kubesim evaluates ValidatingAdmissionPolicy as kube-apiserver does: which requests a policy
and its binding select, what CEL sees, and the status, message and headers of each outcome.

Expected texts and codes are kube-apiserver's (apiserver/pkg/admission/plugin/policy/validating:
`<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with binding '<b>' denied
request: <message>`, reason Invalid → 422 unless the validation names another reason).
"""

from __future__ import annotations

from tests.kubesim.policy_support import (
    ADMISSION,
    ALICE,
    BOB,
    Cluster,
    binding,
    denial,
    policy,
)

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


def test_a_failing_match_condition_is_acted_on_by_the_bindings_actions(cluster: Cluster) -> None:
    conditions = [{"name": "team", "expression": "object.metadata.labels['team'] == 'a'"}]
    cluster.install(policy(matchConditions=conditions), binding())
    refused = cluster.create_configmap("ok-settings", {"other": "x"})
    assert refused.status_code == 422
    assert refused.json()["message"] == denial(
        "configmaps",
        "ok-settings",
        "expression 'object.metadata.labels['team'] == 'a'' resulted in error: no such key: team",
    )
    cluster.request("DELETE", f"{ADMISSION}/validatingadmissionpolicybindings/demo-binding")
    cluster.install(
        policy(name="warned", matchConditions=conditions), binding("w", "warned", ["Warn"])
    )
    warned = cluster.create_configmap("ok-other", {"other": "x"})
    assert warned.status_code == 201, warned.text
    assert "resulted in error: no such key: team" in warned.headers["warning"]
