"""Which requests reach a validating webhook in kubesim, as in kube-apiserver: rules
(group, version, resource/subresource, operation, scope), namespaceSelector, objectSelector
and matchConditions in CEL (with the authorizer), against a real HTTPS webhook.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kubesim.pytest_plugin import KubesimHandle
from tests.kubesim.webhook_server import (
    HOOK,
    POD_CREATE,
    WebhookServer,
    create_pod,
    pod,
    pod_exists,
    refusal,
    register,
    webhook_configuration,
)


def test_a_request_that_fails_a_match_condition_never_reaches_the_webhook(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    only_service_accounts = {
        "name": "grant-identities",
        "expression": "request.userInfo.username.startsWith('system:serviceaccount:')",
    }
    register(kubesim, webhook_configuration(webhook, matchConditions=[only_service_accounts]))

    create_pod(kubesim, pod("scan-1"))

    assert webhook.received == []
    assert pod_exists(kubesim, "scan-1")


def test_match_conditions_see_the_object(kubesim: KubesimHandle, webhook: WebhookServer) -> None:
    labelled = {"name": "labelled", "expression": "object.metadata.labels.app == 'scan'"}
    register(kubesim, webhook_configuration(webhook, matchConditions=[labelled]))

    create_pod(kubesim, pod("other", {"app": "other"}))
    create_pod(kubesim, pod("scan-1", {"app": "scan"}))

    assert [r["name"] for r in webhook.requests()] == ["scan-1"]


def test_a_match_condition_error_fails_closed_as_forbidden(
    kubesim: KubesimHandle, webhook: WebhookServer
) -> None:
    broken = {"name": "broken", "expression": "object.metadata.labels.missing == 'x'"}
    register(kubesim, webhook_configuration(webhook, matchConditions=[broken]))

    status = refusal(kubesim, pod("scan-1", {"app": "scan"}))

    assert status["code"] == 403
    assert status["message"] == (
        "pods \"scan-1\" is forbidden: expression 'object.metadata.labels.missing == 'x'' "
        "resulted in error: no such key: missing"
    )
    assert webhook.received == []


@pytest.mark.parametrize(
    ("rule", "reached"),
    [
        ({"resources": ["pods"]}, True),
        ({"resources": ["*"]}, True),
        ({"resources": ["pods/exec"]}, False),  # a subresource rule is not the pod
        ({"resources": ["*/status"]}, False),
        ({"resources": ["*/*"]}, True),
        ({"resources": ["pods"], "scope": "Cluster"}, False),
        ({"resources": ["pods"], "scope": "Namespaced"}, True),
        ({"resources": ["pods"], "apiGroups": ["apps"]}, False),
        ({"resources": ["pods"], "apiVersions": ["v2"]}, False),
        ({"resources": ["pods"], "operations": ["UPDATE"]}, False),
        ({"resources": ["pods"], "operations": ["*"]}, True),
    ],
)
def test_rules_match_as_the_apiservers(
    kubesim: KubesimHandle, webhook: WebhookServer, rule: dict[str, Any], reached: bool
) -> None:
    register(kubesim, webhook_configuration(webhook, rules=[{**POD_CREATE, **rule}]))

    create_pod(kubesim, pod("scan-1"))

    assert bool(webhook.received) is reached


@pytest.mark.parametrize(
    ("hook", "reached"),
    [
        ({"objectSelector": {"matchLabels": {"app": "scan"}}}, True),
        ({"objectSelector": {"matchLabels": {"app": "other"}}}, False),
        (
            {
                "objectSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["scan"]}]
                }
            },
            True,
        ),
        ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}}}, True),
        ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "orders"}}}, False),
    ],
)
def test_selectors_choose_the_requests_a_webhook_sees(
    kubesim: KubesimHandle, webhook: WebhookServer, hook: dict[str, Any], reached: bool
) -> None:
    register(kubesim, webhook_configuration(webhook, **hook))

    create_pod(kubesim, pod("scan-1", {"app": "scan"}))

    assert bool(webhook.received) is reached


@pytest.mark.parametrize(
    ("expression", "reached"),
    [
        # The requester (admin, system:masters) may delete pods there.
        (
            "authorizer.group('').resource('pods').namespace('payments').check('delete').allowed()",
            True,
        ),
        ("authorizer.requestResource.check('create').allowed()", True),
        # A ServiceAccount without any binding may not.
        (
            "authorizer.serviceAccount('payments', 'default').group('').resource('pods')"
            ".namespace('payments').check('create').allowed()",
            False,
        ),
        ("authorizer.path('/healthz').check('get').allowed()", True),
    ],
)
def test_match_conditions_can_ask_the_authorizer(
    kubesim: KubesimHandle, webhook: WebhookServer, expression: str, reached: bool
) -> None:
    condition = {"name": "authorized", "expression": expression}
    register(kubesim, webhook_configuration(webhook, matchConditions=[condition]))

    create_pod(kubesim, pod("scan-1"))

    assert bool(webhook.received) is reached


@pytest.mark.parametrize(
    ("group", "resource", "kind", "body"),
    [
        ("", "serviceaccounts", "ServiceAccount", {}),
        ("", "secrets", "Secret", {"stringData": {"token": "x"}}),
        ("rbac.authorization.k8s.io", "roles", "Role", {"rules": []}),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            "RoleBinding",
            {
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "view",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "default", "namespace": "payments"}
                ],
            },
        ),
    ],
)
def test_every_stored_kind_is_admitted(
    kubesim: KubesimHandle,
    webhook: WebhookServer,
    group: str,
    resource: str,
    kind: str,
    body: dict[str, Any],
) -> None:
    everything = {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}
    register(kubesim, webhook_configuration(webhook, rules=[everything]))
    webhook.decide = lambda request: {"allowed": False, "status": {"message": "not today"}}
    prefix = f"/apis/{group}/v1" if group else "/api/v1"
    api_version = f"{group}/v1" if group else "v1"

    with httpx.Client(base_url=kubesim.url, trust_env=False) as http:
        answer = http.post(
            f"{prefix}/namespaces/payments/{resource}",
            json={"apiVersion": api_version, "kind": kind, "metadata": {"name": "scan"}, **body},
            headers={"Authorization": f"Bearer {kubesim.admin_token}"},
        )

    assert answer.status_code == 400
    assert answer.json()["message"] == f'admission webhook "{HOOK}" denied the request: not today'
    [request] = webhook.requests()
    assert request["kind"] == {"group": group, "version": "v1", "kind": kind}
    assert request["resource"] == {"group": group, "version": "v1", "resource": resource}
    assert request["object"]["metadata"]["name"] == "scan"
