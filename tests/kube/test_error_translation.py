"""Every API failure becomes one of app/kube's errors, with a safe message."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from kubernetes.aio.client.exceptions import ApiException

from app.kube.error_translation import (
    missing_permission,
    parse_retry_after,
    translate_api_exception,
    translate_transport_error,
)
from app.kube.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    KubeUnauthorized,
    KubeUnavailable,
)
from app.kube.operations import Operation

CREATE_ROLE = Operation("create", "roles", "rbac.authorization.k8s.io", "payments", "scangate-x")
SECRET = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"


def api_error(status: int, message: str = "", reason: str = "", **headers: str) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
         "reason": reason, "code": status}
    )  # fmt: skip
    exc.headers = {k.replace("_", "-"): v for k, v in headers.items()}
    return exc


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, KubeInvalid),
        (422, KubeInvalid),
        (401, KubeUnauthorized),
        (403, KubeForbidden),
        (404, KubeNotFound),
        (409, KubeConflict),
        (429, KubeUnavailable),
        (500, KubeUnavailable),
        (503, KubeUnavailable),
        (504, KubeUnavailable),
    ],
)
def test_status_codes_map_to_the_error_tree(status: int, error_type: type[KubeError]) -> None:
    error = translate_api_exception(api_error(status, "boom"), CREATE_ROLE, "prod")
    assert type(error) is error_type
    assert 'cluster "prod"' in str(error)


def test_unauthorized_is_a_forbidden_naming_credentials() -> None:
    error = translate_api_exception(api_error(401, "Unauthorized"), CREATE_ROLE, "prod")
    assert isinstance(error, KubeForbidden)
    assert "credentials" in error.permission


def test_forbidden_names_the_permission_from_the_status_message() -> None:
    message = (
        'roles.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:sg:sg" cannot '
        'create resource "roles" in API group "rbac.authorization.k8s.io" in the namespace '
        '"payments"'
    )
    error = translate_api_exception(api_error(403, message, "Forbidden"), CREATE_ROLE, "prod")
    assert isinstance(error, KubeForbidden)
    assert error.permission == 'create roles.rbac.authorization.k8s.io in namespace "payments"'
    assert error.permission in str(error)


@pytest.mark.parametrize(
    ("message", "permission"),
    [
        (
            'pods "web-0" is forbidden: User "u" cannot get resource "pods" in API group "" '
            'in the namespace "payments"',
            'get pods in namespace "payments"',
        ),
        (
            'roles.rbac.authorization.k8s.io is forbidden: User "u" cannot list resource "roles" '
            'in API group "rbac.authorization.k8s.io" at the cluster scope',
            "list roles.rbac.authorization.k8s.io at cluster scope",
        ),
        (
            'User "u" cannot create resource "serviceaccounts/token" in API group "" in the '
            'namespace "scangate-grants"',
            'create serviceaccounts/token in namespace "scangate-grants"',
        ),
        (
            'namespaces "payments" is forbidden: User "u" cannot get resource "namespaces" in '
            'API group "" in the namespace "payments"',
            'get namespaces in namespace "payments"',
        ),
    ],
)
def test_permission_is_parsed_from_rbac_denials(message: str, permission: str) -> None:
    assert missing_permission(message, CREATE_ROLE) == permission


def test_escalation_denial_names_the_permissions_not_held() -> None:
    # Upstream's CompactString quotes lists Go-style: ["create" "get"].
    message = (
        'roles.rbac.authorization.k8s.io "scangate-x" is forbidden: user "system:serviceaccount:'
        'sg:sg" (groups=["system:serviceaccounts" "system:authenticated"]) is attempting to '
        "grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods/exec"], ResourceNames:["web-0"], '
        'Verbs:["create" "get"]}\n'
        '{APIGroups:[""], Resources:["pods/log"], ResourceNames:["web-0" "web-1"], Verbs:["get"]}'
    )
    error = translate_api_exception(api_error(403, message, "Forbidden"), CREATE_ROLE, "prod")
    assert isinstance(error, KubeForbidden)
    assert error.permission == (
        'create/get pods/exec, get pods/log in namespace "payments" (RBAC escalation prevention)'
    )


def test_escalation_denial_names_each_permission_once_however_many_pods() -> None:
    # A Role names its pods rule by rule; one missing permission is listed once per pod.
    rule = (
        '{{APIGroups:[""], Resources:["pods/ephemeralcontainers"], ResourceNames:["{pod}"], '
        'Verbs:["update"]}}'
    )
    message = (
        'roles.rbac.authorization.k8s.io "scangate-x" is forbidden: user "sg" is attempting to '
        "grant RBAC permissions not currently held:\n"
        + "\n".join(rule.format(pod=pod) for pod in ("web-0", "web-1", "web-2"))
    )
    error = translate_api_exception(api_error(403, message, "Forbidden"), CREATE_ROLE, "prod")
    assert isinstance(error, KubeForbidden)
    assert error.permission == (
        'update pods/ephemeralcontainers in namespace "payments" (RBAC escalation prevention)'
    )


def test_binding_to_a_missing_role_names_bind_and_the_role() -> None:
    message = (
        'rolebindings.rbac.authorization.k8s.io "scangate-x" is forbidden: '
        'roles.rbac.authorization.k8s.io "scangate-x" not found'
    )
    binding = Operation("create", "rolebindings", "rbac.authorization.k8s.io", "payments")
    error = translate_api_exception(api_error(403, message, "Forbidden"), binding, "prod")
    assert isinstance(error, KubeForbidden)
    assert error.permission.startswith('bind roles.rbac.authorization.k8s.io in namespace "pay')
    assert 'Role "scangate-x"' in error.permission


def test_unparseable_forbidden_falls_back_to_the_operation() -> None:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = "<html>proxy says no</html>"
    error = translate_api_exception(exc, CREATE_ROLE, "prod")
    assert isinstance(error, KubeForbidden)
    assert error.permission == 'create roles.rbac.authorization.k8s.io in namespace "payments"'
    assert "proxy" not in str(error)


def test_messages_never_carry_raw_bodies_or_bearer_tokens() -> None:
    exc = ApiException(status=500, reason="Internal Server Error")
    exc.body = f'{{"token": "{SECRET}"}}'
    assert SECRET not in str(translate_api_exception(exc, CREATE_ROLE, "prod"))
    invalid = api_error(422, f"Authorization: Bearer {SECRET} is invalid", "Invalid")
    error = translate_api_exception(invalid, CREATE_ROLE, "prod")
    assert SECRET not in str(error)
    assert "is invalid" in str(error)


def test_long_status_messages_are_cut() -> None:
    error = translate_api_exception(api_error(422, "x" * 5000, "Invalid"), CREATE_ROLE, "prod")
    assert len(str(error)) < 500


def test_not_found_keeps_the_api_server_message() -> None:
    error = translate_api_exception(
        api_error(404, 'namespaces "nope" not found', "NotFound"), CREATE_ROLE, "prod"
    )
    assert 'namespaces "nope" not found' in str(error)


def test_unavailable_carries_retry_after() -> None:
    error = translate_api_exception(api_error(429, "slow down", Retry_After="7"), CREATE_ROLE, "p")
    assert isinstance(error, KubeUnavailable)
    assert error.retry_after == 7.0


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:05 GMT", now=now) == 5.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_connection_errors_are_unavailable_without_addresses_or_urls() -> None:
    exc = ConnectionRefusedError(111, "Connect call failed ('10.0.0.7', 6443)")
    error = translate_transport_error(exc, CREATE_ROLE, "prod")
    assert isinstance(error, KubeUnavailable)
    assert "ConnectionRefusedError" in str(error)
    assert "10.0.0.7" not in str(error)
