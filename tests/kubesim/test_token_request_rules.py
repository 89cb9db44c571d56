"""TokenRequest corners, in kube-apiserver's order (pkg/registry/core/serviceaccount/storage
token.go and its integration test): the body's name and namespace against the URL, then the
ServiceAccount, then validation, then the bound object; a shortened lifetime is announced in a
`Warning` header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kubesim.pytest_plugin import KubesimHandle

_SA = "/api/v1/namespaces/payments/serviceaccounts"


def _request(spec: dict[str, Any] | None = None, **metadata: str) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": metadata,
        "spec": spec if spec is not None else {"expirationSeconds": 600},
    }


@pytest.fixture
def admin(kubesim: KubesimHandle) -> httpx.Client:
    kubesim.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "scanner", "namespace": "payments"}},
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "scanner-pod", "namespace": "payments"},
             "spec": {"serviceAccountName": "scanner",
                      "containers": [{"name": "scan", "image": "scanner:1"}]}},
        ]
    )  # fmt: skip
    return httpx.Client(
        base_url=kubesim.url,
        headers={"Authorization": f"Bearer {kubesim.admin_token}"},
        trust_env=False,
    )


def test_missing_service_account_is_404_before_validation(admin: httpx.Client) -> None:
    # An invalid lifetime for an account that does not exist: the lookup answers first.
    with admin:
        response = admin.post(f"{_SA}/nobody/token", json=_request({"expirationSeconds": 5}))

    assert response.status_code == 404
    assert response.json()["message"] == 'serviceaccounts "nobody" not found'


def test_body_namespace_must_match_the_url(admin: httpx.Client) -> None:
    with admin:
        response = admin.post(f"{_SA}/scanner/token", json=_request(namespace="orders"))

    assert response.status_code == 422
    body = response.json()
    assert body["details"]["name"] == "scanner"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "orders": must match the service account namespace '
            "if specified",
            "field": "metadata.namespace",
        }
    ]


def test_body_name_is_checked_before_the_service_account_lookup(admin: httpx.Client) -> None:
    with admin:
        response = admin.post(f"{_SA}/nobody/token", json=_request(name="other"))

    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.name"


def test_bound_pod_must_run_as_the_service_account(admin: httpx.Client) -> None:
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web-0"}  # runs as "default"
    with admin:
        response = admin.post(
            f"{_SA}/scanner/token",
            json=_request({"expirationSeconds": 600, "boundObjectRef": ref}),
        )

    assert response.status_code == 400
    assert response.json()["message"] == (
        'cannot bind token for serviceaccount "scanner" to pod running with different '
        "serviceaccount name."
    )


def test_token_bound_to_a_pod_running_as_the_service_account(admin: httpx.Client) -> None:
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "scanner-pod"}
    with admin:
        response = admin.post(
            f"{_SA}/scanner/token",
            json=_request({"expirationSeconds": 600, "boundObjectRef": ref}),
        )

    assert response.status_code == 201
    assert response.json()["spec"]["boundObjectRef"]["uid"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"},
            "cannot bind token to object of type /v1, Kind=ConfigMap",
        ),
        (
            {"kind": "Pod", "apiVersion": "apps/v1", "name": "scanner-pod"},
            "cannot bind token to object of type apps/v1, Kind=Pod",
        ),
    ],
)
def test_bound_object_must_be_a_pod_or_secret(
    admin: httpx.Client, ref: dict[str, str], message: str
) -> None:
    with admin:
        response = admin.post(
            f"{_SA}/scanner/token",
            json=_request({"expirationSeconds": 600, "boundObjectRef": ref}),
        )

    assert response.status_code == 400
    assert response.json()["message"] == message


def test_no_warning_when_the_lifetime_is_kept(admin: httpx.Client) -> None:
    with admin:
        response = admin.post(f"{_SA}/scanner/token", json=_request())

    assert response.status_code == 201
    assert "warning" not in response.headers


def test_shortened_lifetime_carries_a_warning(
    kubesim_factory: Callable[..., KubesimHandle],
) -> None:
    handle: KubesimHandle = kubesim_factory(token_max_seconds=900)
    handle.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "scanner", "namespace": "payments"}}
    )  # fmt: skip
    with httpx.Client(
        base_url=handle.url,
        headers={"Authorization": f"Bearer {handle.admin_token}"},
        trust_env=False,
    ) as http:
        response = http.post(f"{_SA}/scanner/token", json=_request({"expirationSeconds": 3600}))

    assert response.status_code == 201
    assert response.json()["spec"]["expirationSeconds"] == 900
    assert response.headers["warning"] == (
        '299 - "requested expiration of 3600 seconds shortened to 900 seconds"'
    )
