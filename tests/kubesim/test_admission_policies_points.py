"""Where admission policies are evaluated: updates (no-op ones too), deletes, CONNECT of
pods/exec and pods/attach, ephemeral containers; and what CEL's authorizer answers."""

from __future__ import annotations

from tests.kubesim.policy_support import (
    BOB,
    Cluster,
    binding,
    denial,
    policy,
)


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


def test_an_object_selector_never_selects_a_connect(cluster: Cluster) -> None:
    # object.Matcher, shared with webhooks: the options of a CONNECT have no labels to match,
    # not even "no label x"; an empty selector still selects everything.
    selector = {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}
    deny_exec = policy(
        validations=[{"expression": "false", "message": "no exec"}],
        operations=["CONNECT"],
        resources=["pods/exec"],
    )
    deny_exec["spec"]["matchConstraints"]["objectSelector"] = selector
    cluster.install(deny_exec, binding())
    path = "/api/v1/namespaces/payments/pods/web-0/exec?container=app&command=true"
    assert cluster.request("POST", path).status_code == 400  # admitted: no upgrade asked
    cluster.install(policy("all", [{"expression": "false", "message": "no exec"}],
                           operations=["CONNECT"], resources=["pods/exec"]),
                    binding("all-binding", "all"))  # fmt: skip
    assert cluster.request("POST", path).status_code == 422


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
