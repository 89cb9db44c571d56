"""ValidatingWebhookConfiguration as the apiserver serves it: discovered, defaulted, validated
with its rules and wording, and able to reach a webhook through a Service."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from tests.kubesim.webhook_server import WebhookServer

GROUP = "admissionregistration.k8s.io"


def configuration(**hook: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "guard.scangate.example.com",
        "clientConfig": {"url": "https://guard.example.com/validate"},
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["pods"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    spec.update(hook)
    return {
        "metadata": {"name": "guard"},
        "webhooks": [{k: v for k, v in spec.items() if v is not None}],
    }


def create(handle: KubesimHandle, body: dict[str, Any]) -> Any:
    with handle.admin_client() as api:
        return client.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(body)


def causes(handle: KubesimHandle, body: dict[str, Any]) -> list[tuple[str, str]]:
    # Over plain HTTP: the official client refuses to send a webhook without its required
    # fields, which is what these tests ask the server about.
    with httpx.Client(base_url=handle.url, trust_env=False) as http:
        answer = http.post(
            f"/apis/{GROUP}/v1/validatingwebhookconfigurations",
            json=body,
            headers={"Authorization": f"Bearer {handle.admin_token}"},
        )
    status = answer.json()
    assert answer.status_code == 422
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"].startswith(
        'ValidatingWebhookConfiguration.admissionregistration.k8s.io "guard" is invalid: '
    )
    return [(c["field"], c["message"]) for c in status["details"]["causes"]]


def test_the_kind_is_discovered_cluster_scoped(kubesim: KubesimHandle) -> None:
    with kubesim.admin_client() as api:
        resources = client.AdmissionregistrationV1Api(api).get_api_resources()
    [found] = [r for r in resources.resources if r.name == "validatingwebhookconfigurations"]
    assert (found.kind, found.namespaced) == ("ValidatingWebhookConfiguration", False)
    assert resources.group_version == f"{GROUP}/v1"


def test_defaults_are_filled_in(kubesim: KubesimHandle) -> None:
    body = configuration(clientConfig={"service": {"namespace": "scangate", "name": "guard"}})

    created = create(kubesim, body).webhooks[0]

    assert created.failure_policy == "Fail"
    assert created.match_policy == "Equivalent"
    assert created.timeout_seconds == 10
    assert created.namespace_selector == client.V1LabelSelector()
    assert created.object_selector == client.V1LabelSelector()
    assert created.rules[0].scope == "*"
    assert created.client_config.service.port == 443


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        (
            {"sideEffects": None},
            ("webhooks[0].sideEffects", "Required value: must specify one of None, NoneOnDryRun"),
        ),
        (
            {"sideEffects": "Some"},
            (
                "webhooks[0].sideEffects",
                'Unsupported value: "Some": supported values: "None", "NoneOnDryRun"',
            ),
        ),
        (
            {"admissionReviewVersions": None},
            (
                "webhooks[0].admissionReviewVersions",
                "Required value: must specify one of v1, v1beta1",
            ),
        ),
        (
            {
                "clientConfig": {
                    "url": "https://a.example.com",
                    "service": {"namespace": "a", "name": "b"},
                }
            },
            (
                "webhooks[0].clientConfig",
                "Required value: exactly one of url or service is required",
            ),
        ),
        (
            {"clientConfig": {"url": "http://guard.example.com/validate"}},
            (
                "webhooks[0].clientConfig.url",
                "Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: "
                "https://host[/path]",
            ),
        ),
        (
            {"failurePolicy": "Sometimes"},
            (
                "webhooks[0].failurePolicy",
                'Unsupported value: "Sometimes": supported values: "Fail", "Ignore"',
            ),
        ),
        (
            {"timeoutSeconds": 31},
            (
                "webhooks[0].timeoutSeconds",
                "Invalid value: 31: the timeout value must be between 1 and 30 seconds",
            ),
        ),
        (
            {"name": "guard"},
            (
                "webhooks[0].name",
                'Invalid value: "guard": should be a domain with at least three segments '
                "separated by dots",
            ),
        ),
        (
            {
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["*/*", "pods"],
                    }
                ]
            },
            (
                "webhooks[0].rules[0].resources",
                'Invalid value: []string{"*/*", "pods"}: if \'*/*\' is present, must not specify '
                "other resources",
            ),
        ),
        (
            {
                "matchConditions": [
                    {"name": "a", "expression": "true"},
                    {"name": "a", "expression": "true"},
                ]
            },
            ("webhooks[0].matchConditions[1].name", 'Duplicate value: "a"'),
        ),
        (
            {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
            (
                "webhooks[0].namespaceSelector.matchExpressions[0].operator",
                'Invalid value: "Near": not a valid selector operator',
            ),
        ),
        (
            {"matchConditions": [{"name": f"c{i}", "expression": "true"} for i in range(65)]},
            ("webhooks[0].matchConditions", "Too many: 65: must have at most 64 items"),
        ),
        (
            {"matchConditions": [{"name": "a", "expression": "params.x == 1"}]},
            (
                "webhooks[0].matchConditions[0].expression",
                'Invalid value: "params.x == 1": compilation failed: '
                "undeclared reference to 'params'",
            ),
        ),
    ],
)
def test_invalid_configurations_are_refused_naming_the_field(
    kubesim: KubesimHandle, hook: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert expected in causes(kubesim, configuration(**hook))


def test_duplicate_webhook_names_are_refused(kubesim: KubesimHandle) -> None:
    body = configuration()
    body["webhooks"].append(dict(body["webhooks"][0]))

    assert ("webhooks[1].name", 'Duplicate value: "guard.scangate.example.com"') in causes(
        kubesim, body
    )


@pytest.fixture
def service_webhook(tmp_path: Path) -> Iterator[WebhookServer]:
    server = WebhookServer(tmp_path, server_name="guard.scangate.svc")
    server.start()
    yield server
    server.stop()


def test_a_service_webhook_is_called_at_its_mapped_address_with_the_service_name(
    kubesim_factory: Callable[..., KubesimHandle], service_webhook: WebhookServer
) -> None:
    handle: KubesimHandle = kubesim_factory(
        service_addresses={"scangate/guard": f"127.0.0.1:{service_webhook.port}"}
    )
    handle.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "guard", "namespace": "scangate"},
            "spec": {"ports": [{"port": 443, "targetPort": 8443}]},
        }
    )
    service = {"namespace": "scangate", "name": "guard", "path": "/validate", "port": 443}
    create(
        handle,
        configuration(clientConfig={"service": service, "caBundle": service_webhook.ca_bundle}),
    )
    service_webhook.decide = lambda request: {"allowed": False, "status": {"message": "no"}}

    with handle.admin_client() as api, pytest.raises(ApiException) as raised:
        client.CoreV1Api(api).create_namespaced_pod(
            "payments",
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "b"}]}},
        )

    assert json.loads(raised.value.body)["message"] == (
        'admission webhook "guard.scangate.example.com" denied the request: no'
    )
    [received] = service_webhook.received
    # TLS was verified for guard.scangate.svc, and that is the Host the webhook sees.
    assert received.host == "guard.scangate.svc:443"
    assert received.path == "/validate?timeout=10s"


def test_a_service_that_does_not_exist_fails_the_request(kubesim: KubesimHandle) -> None:
    service = {"namespace": "scangate", "name": "missing", "path": "/validate"}
    create(kubesim, configuration(clientConfig={"service": service}))

    with kubesim.admin_client() as api, pytest.raises(ApiException) as raised:
        client.CoreV1Api(api).create_namespaced_pod(
            "payments",
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "b"}]}},
        )

    assert json.loads(raised.value.body)["message"] == (
        'Internal error occurred: failed calling webhook "guard.scangate.example.com": failed to '
        'call webhook: Post "https://missing.scangate.svc:443/validate?timeout=10s": service '
        '"missing" not found'
    )


def test_kubectl_applies_and_lists_webhook_configurations(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    manifest = tmp_path / "guard.yaml"
    manifest.write_text(
        json.dumps(
            {
                "apiVersion": f"{GROUP}/v1",
                "kind": "ValidatingWebhookConfiguration",
                **configuration(failurePolicy="Ignore"),
            }
        )
    )

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(kubesim_tls.admin_kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    first, again = kubectl("apply", "-f", str(manifest)), kubectl("apply", "-f", str(manifest))
    listed = kubectl("get", "validatingwebhookconfigurations")

    assert first.returncode == 0, first.stderr
    # A second apply strategic-merges the webhooks by name, keeping every field.
    assert again.returncode == 0, again.stderr
    assert listed.stdout.split("\n")[0].split() == ["NAME", "WEBHOOKS", "AGE"]
    assert listed.stdout.split("\n")[1].split()[:2] == ["guard", "1"]


def test_the_group_version_has_an_openapi_document(kubesim: KubesimHandle) -> None:
    with httpx.Client(base_url=kubesim.url, trust_env=False) as http:
        headers = {"Authorization": f"Bearer {kubesim.admin_token}"}
        index = http.get("/openapi/v3", headers=headers).json()
        document = http.get(f"/openapi/v3/apis/{GROUP}/v1", headers=headers).json()

    assert f"apis/{GROUP}/v1" in index["paths"]
    assert f"/apis/{GROUP}/v1/validatingwebhookconfigurations/{{name}}" in document["paths"]


def test_a_malformed_service_address_stops_kubesim_at_startup() -> None:
    started = subprocess.run(
        [sys.executable, "-m", "kubesim", "--admin-token=t", "--service-address", "guard=host"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert started.returncode == 2
    assert "--service-address must look like NS/NAME=HOST:PORT" in started.stderr


def test_the_generation_moves_when_the_webhooks_change(kubesim: KubesimHandle) -> None:
    with kubesim.admin_client() as api:
        admission = client.AdmissionregistrationV1Api(api)
        created = admission.create_validating_webhook_configuration(configuration())
        labelled = admission.patch_validating_webhook_configuration(
            "guard", {"metadata": {"labels": {"team": "security"}}}
        )
        changed = admission.patch_validating_webhook_configuration(
            "guard", {"webhooks": [{"name": "guard.scangate.example.com", "timeoutSeconds": 5}]}
        )

    assert [o.metadata.generation for o in (created, labelled, changed)] == [1, 1, 2]
    assert changed.webhooks[0].timeout_seconds == 5
    assert changed.webhooks[0].side_effects == "None"


def test_a_service_address_can_be_set_at_run_time_until_the_next_reset(
    kubesim: KubesimHandle, service_webhook: WebhookServer
) -> None:
    kubesim.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "guard", "namespace": "scangate"},
            "spec": {"ports": [{"port": 443}]},
        }
    )
    kubesim.set_service_address("scangate/guard", f"127.0.0.1:{service_webhook.port}")
    service = {"namespace": "scangate", "name": "guard", "path": "/validate"}
    create(
        kubesim,
        configuration(clientConfig={"service": service, "caBundle": service_webhook.ca_bundle}),
    )
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "b"}]}}

    with kubesim.admin_client() as api:
        client.CoreV1Api(api).create_namespaced_pod("payments", pod)

    assert [r.request["name"] for r in service_webhook.received] == ["p"]
    kubesim.reset()
    kubesim.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "guard", "namespace": "scangate"},
            "spec": {"ports": [{"port": 443}]},
        }
    )
    create(kubesim, configuration(clientConfig={"service": service}))
    with kubesim.admin_client() as api, pytest.raises(ApiException) as raised:
        client.CoreV1Api(api).create_namespaced_pod("payments", pod)
    assert "kubesim has no address for service scangate/guard" in raised.value.body
    with httpx.Client(base_url=kubesim.url, trust_env=False) as http:
        answer = http.put(
            "/_kubesim/service-addresses",
            json={"service": "guard", "address": "127.0.0.1:1"},
            headers={"Authorization": f"Bearer {kubesim.admin_token}"},
        )
    assert (answer.status_code, answer.json()["message"]) == (
        400,
        "`service` must be NAMESPACE/NAME",
    )
