"""API errors, answered as `Status` objects with the real apiserver's reasons and messages.

Clients branch on `reason` and `code` (the `kubernetes` client, kubectl, Helm and scangate all
do), and people read `message`, so each constructor copies the wording of
k8s.io/apimachinery/pkg/api/errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubesim.resources import ResourceType


@dataclass(frozen=True)
class FieldError:
    """One `field.Error`: becomes a cause of an Invalid status."""

    field: str
    detail: str
    value: Any = None
    kind: str = "invalid"  # invalid | required | unsupported | forbidden | duplicate | toomany

    _REASONS = {
        "invalid": "FieldValueInvalid",
        "required": "FieldValueRequired",
        "unsupported": "FieldValueNotSupported",
        "forbidden": "FieldValueForbidden",
        "duplicate": "FieldValueDuplicate",
        "toomany": "FieldValueTooMany",
    }

    @property
    def reason(self) -> str:
        return self._REASONS[self.kind]

    @property
    def message(self) -> str:
        """The cause message, e.g. `Invalid value: "Bad": a lowercase RFC 1123 ...`."""
        if self.kind == "required":
            return f"Required value: {self.detail}" if self.detail else "Required value"
        if self.kind == "forbidden":
            return f"Forbidden: {self.detail}"
        if self.kind == "duplicate":
            return f"Duplicate value: {_go_value(self.value)}"
        label = {"unsupported": "Unsupported value", "toomany": "Too many"}.get(
            self.kind, "Invalid value"
        )
        return f"{label}: {_go_value(self.value)}: {self.detail}"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _go_value(value: Any) -> str:
    # The apiserver prints strings quoted and numbers bare (Go's %#v / %d).
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
    return json.dumps(value, separators=(",", ":"))


@dataclass
class ApiError(Exception):
    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rt: ResourceType | None, name: str, kind: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rt is not None and rt.group:
        details["group"] = rt.group
    if kind is not None:
        details["kind"] = kind
    elif rt is not None:
        details["kind"] = rt.plural
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(rt: ResourceType, name: str) -> ApiError:
    message = f'{rt.group_resource} "{name}" already exists'
    return ApiError(409, "AlreadyExists", message, _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    message = f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}'
    return ApiError(409, "Conflict", message, _details(rt, name))


STALE_OBJECT = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(
    rt: ResourceType,
    name: str,
    errors: list[FieldError],
    kind: str = "",
    group: str | None = None,
) -> ApiError:
    """`Role.rbac.authorization.k8s.io "x" is invalid: rules[0].verbs: Required value: ...`."""
    kind = kind or rt.kind
    group = rt.group if group is None else group
    summary = str(errors[0]) if len(errors) == 1 else f"[{', '.join(str(e) for e in errors)}]"
    details: dict[str, Any] = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": e.reason, "message": e.message, "field": e.field} for e in errors
    ]
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(rt: ResourceType | None, name: str, why: str, plural: str = "") -> ApiError:
    """`pods "web-0" is forbidden: <why>`, the shape of every 403 the apiserver sends."""
    if rt is None and not plural:
        return ApiError(403, "Forbidden", f"forbidden: {why}", {})
    resource = rt.group_resource if rt is not None else plural
    subject = f'{resource} "{name}"' if name else resource
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", _details(rt, name))


def method_not_allowed() -> ApiError:
    message = "the server does not allow this method on the requested resource"
    return ApiError(405, "MethodNotAllowed", message, {})


def not_acceptable() -> ApiError:
    message = "only the following media types are accepted: application/json, application/yaml"
    return ApiError(406, "NotAcceptable", message)


def unsupported_media_type(accepted: str) -> ApiError:
    message = (
        "the body of the request was in an unknown format - accepted media types include: "
        + accepted
    )
    return ApiError(415, "UnsupportedMediaType", message)


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after},
        {"Retry-After": str(retry_after)},
    )


def internal_error(why: str) -> ApiError:
    return ApiError(
        500, "InternalError", f"Internal error occurred: {why}", {"causes": [{"message": why}]}
    )


def service_unavailable(retry_after: int | None = None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    details = {"retryAfterSeconds": retry_after} if retry_after is not None else None
    message = "the server is currently unable to handle the request"
    return ApiError(503, "ServiceUnavailable", message, details, headers)


_REASON_BY_CODE = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def from_code(code: int, message: str, retry_after: int | None = None) -> ApiError:
    """A generic error for fault injection: right code and reason, canned message."""
    if code == 429:
        return too_many_requests(retry_after if retry_after is not None else 1)
    if code == 503:
        return service_unavailable(retry_after)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return ApiError(code, _REASON_BY_CODE.get(code, "Unknown"), message, None, headers)
