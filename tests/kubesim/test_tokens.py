"""Authentication: ServiceAccount tokens live exactly as long as the real apiserver lets them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from tests.support.kubesim_clients import (
    create_service_account,
    request_token,
    status_of,
    token_client,
)


def _read_web_0(handle: KubesimHandle, token: str) -> client.V1Pod:
    with token_client(handle, token) as api:
        return client.CoreV1Api(api).read_namespaced_pod("web-0", "payments")


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_service_account_token_authenticates_and_is_authorized(
    kubesim: KubesimHandle, scanner_token: str
) -> None:
    assert _read_web_0(kubesim, scanner_token).metadata.name == "web-0"


def test_token_carries_the_service_account_claims(kubesim: KubesimHandle) -> None:
    create_service_account(kubesim, "scangate-grants", "claims")
    response = request_token(kubesim, "scangate-grants", "claims", 900)
    claims = _claims(response.status.token)

    assert claims["sub"] == "system:serviceaccount:scangate-grants:claims"
    assert claims["exp"] == claims["iat"] + 900  # type: ignore[operator]
    assert claims["nbf"] == claims["iat"]
    k8s = claims["kubernetes.io"]
    assert k8s["namespace"] == "scangate-grants"  # type: ignore[index]
    with kubesim.admin_client() as api:
        sa = client.CoreV1Api(api).read_namespaced_service_account("claims", "scangate-grants")
    assert k8s["serviceaccount"] == {"name": "claims", "uid": sa.metadata.uid}  # type: ignore[index]
    assert claims["aud"] == response.spec.audiences


def test_deleted_service_account_token_gets_401(kubesim: KubesimHandle, scanner_token: str) -> None:
    with kubesim.admin_client() as api:
        client.CoreV1Api(api).delete_namespaced_service_account("scanner", "scangate-grants")

    with pytest.raises(ApiException) as rejected:
        _read_web_0(kubesim, scanner_token)

    assert rejected.value.status == 401
    assert status_of(rejected.value)["reason"] == "Unauthorized"


def test_recreated_service_account_does_not_revive_old_tokens(
    kubesim: KubesimHandle, scanner_token: str
) -> None:
    with kubesim.admin_client() as api:
        core = client.CoreV1Api(api)
        core.delete_namespaced_service_account("scanner", "scangate-grants")
        core.create_namespaced_service_account("scangate-grants", {"metadata": {"name": "scanner"}})

    with pytest.raises(ApiException) as rejected:
        _read_web_0(kubesim, scanner_token)

    assert rejected.value.status == 401
    fresh = request_token(kubesim, "scangate-grants", "scanner").status.token
    assert _read_web_0(kubesim, fresh).metadata.name == "web-0"


@pytest.mark.parametrize(
    ("seconds_after_issue", "authenticates"),
    [
        (599, True),  # before `exp` (the token lives 600 s)
        (600 + 59, True),  # past `exp`, inside go-jose's 60 s leeway (pkg/serviceaccount)
        (600 + 61, False),  # past the leeway: "service account token has expired"
        (3600, False),
    ],
)
def test_token_expiry_allows_the_jwt_leeway(
    kubesim: KubesimHandle, scanner_token: str, seconds_after_issue: int, authenticates: bool
) -> None:
    # The token is first presented after the clock moved, so no cached authentication of it
    # exists: this is the validator's own verdict.
    kubesim.advance_clock(seconds_after_issue)

    if authenticates:
        assert _read_web_0(kubesim, scanner_token).metadata.name == "web-0"
        return
    with pytest.raises(ApiException) as rejected:
        _read_web_0(kubesim, scanner_token)
    assert rejected.value.status == 401
    assert status_of(rejected.value)["reason"] == "Unauthorized"


def test_token_signed_by_someone_else_gets_401(kubesim: KubesimHandle, scanner_token: str) -> None:
    header, payload, signature = scanner_token.split(".")
    forged_claims = _claims(scanner_token)
    forged_claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=")

    for forged in (f"{header}.{forged_payload.decode()}.{signature}", f"{header}.{payload}.x"):
        with pytest.raises(ApiException) as rejected:
            _read_web_0(kubesim, forged)
        assert rejected.value.status == 401


def test_anonymous_request_gets_401(kubesim: KubesimHandle) -> None:
    with token_client(kubesim, "") as api:
        api.configuration.api_key = {}
        with pytest.raises(ApiException) as rejected:
            client.CoreV1Api(api).list_namespaced_pod("payments")

    assert rejected.value.status == 401
    assert status_of(rejected.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_token_request_below_ten_minutes_is_invalid(kubesim: KubesimHandle) -> None:
    create_service_account(kubesim, "scangate-grants", "short")

    with pytest.raises(ApiException) as rejected:
        request_token(kubesim, "scangate-grants", "short", 599)

    assert rejected.value.status == 422
    status = status_of(rejected.value)
    assert status["reason"] == "Invalid"
    assert status["message"] == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
        "Invalid value: 599: may not specify a duration less than 10 minutes"
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 599: may not specify a duration less than 10 minutes",
            "field": "spec.expirationSeconds",
        }
    ]


@pytest.mark.parametrize("spec", [{}, {"expirationSeconds": None}])
def test_an_omitted_or_null_lifetime_is_defaulted_to_one_hour(
    kubesim: KubesimHandle, spec: dict[str, object]
) -> None:
    # JSON null decodes to a nil *int64, which the v1 defaulter sets to 3600 (kubectl
    # create token sends it so when talking to an older server).
    create_service_account(kubesim, "scangate-grants", "null-ttl")
    response = httpx.post(
        f"{kubesim.url}/api/v1/namespaces/scangate-grants/serviceaccounts/null-ttl/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        headers={"Authorization": f"Bearer {kubesim.admin_token}"},
        trust_env=False,
    )

    assert response.status_code == 201, response.text
    assert response.json()["spec"]["expirationSeconds"] == 3600


def test_token_request_defaults_to_one_hour(kubesim: KubesimHandle) -> None:
    create_service_account(kubesim, "scangate-grants", "default-ttl")
    with kubesim.admin_client() as api:
        response = client.CoreV1Api(api).create_namespaced_service_account_token(
            "default-ttl", "scangate-grants", {"spec": {}}
        )

    assert response.spec.expiration_seconds == 3600
    claims = _claims(response.status.token)
    assert claims["exp"] == claims["iat"] + 3600  # type: ignore[operator]


def test_server_maximum_shortens_longer_token_requests(kubesim_factory: object) -> None:
    handle: KubesimHandle = kubesim_factory(token_max_seconds=900)  # type: ignore[operator]
    create_service_account(handle, "scangate-grants", "capped")

    response = request_token(handle, "scangate-grants", "capped", 7200)

    assert response.spec.expiration_seconds == 900
    claims = _claims(response.status.token)
    expires = datetime.fromtimestamp(claims["exp"], UTC)  # type: ignore[arg-type]
    assert response.status.expiration_timestamp == expires


def test_token_request_for_missing_service_account_is_not_found(kubesim: KubesimHandle) -> None:
    with pytest.raises(ApiException) as rejected:
        request_token(kubesim, "scangate-grants", "nobody")

    assert rejected.value.status == 404
    assert status_of(rejected.value)["message"] == 'serviceaccounts "nobody" not found'


def test_static_user_token_gets_its_groups(kubesim: KubesimHandle) -> None:
    kubesim.add_user_token("alice-token", "alice", ["developers"])

    with token_client(kubesim, "alice-token") as api:
        review = client.AuthenticationV1Api(api).create_self_subject_review({})

    assert review.status.user_info.username == "alice"
    assert review.status.user_info.groups == ["developers", "system:authenticated"]


def test_service_account_user_has_service_account_groups(
    kubesim: KubesimHandle, scanner_token: str
) -> None:
    with token_client(kubesim, scanner_token) as api:
        review = client.AuthenticationV1Api(api).create_self_subject_review({})

    assert review.status.user_info.groups == [
        "system:serviceaccounts",
        "system:serviceaccounts:scangate-grants",
        "system:authenticated",
    ]


def test_reset_forgets_static_user_tokens(kubesim: KubesimHandle) -> None:
    kubesim.add_user_token("temporary", "bob", [])
    with token_client(kubesim, "temporary") as api:  # now in the authentication cache too
        assert client.VersionApi(api).get_code().major == "1"
    kubesim.reset()

    with token_client(kubesim, "temporary") as api, pytest.raises(ApiException) as rejected:
        client.CoreV1Api(api).list_namespaced_pod("payments")
    assert rejected.value.status == 401
