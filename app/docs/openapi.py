"""The OpenAPI document: what FastAPI generates from the routes, plus what it cannot know.

Routes declare their error statuses with `problem_responses(404, 409, ...)`; this module turns
every error response into `application/problem+json` with the `Problem` schema (RFC 9457) and
an example, replaces FastAPI's own 422 schema (our handler answers validation errors with a
problem too), adds 401 to every authenticated operation, and describes the bearer scheme.
A test walks the finished document and checks that every operation, request and response is
described and has an example.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from app.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE

API_DESCRIPTION: Final = f"""\
scangate hands CI pipelines **just-in-time, least-privilege, time-limited access to specific
Kubernetes pods** for security scanning. A grant names a namespace, pods (or a label selector,
resolved once at grant time) and a scanner profile; scangate creates a ServiceAccount, a Role
restricted by `resourceNames` to exactly those pods and a RoleBinding, hands out short-lived
kubeconfigs, and deletes everything when the grant is revoked or expires.

**Authentication**: every `/v1` call needs `Authorization: Bearer <API key or CI OIDC ID token>`.
A caller only ever sees its own grants (another principal's grant answers 404); admins see all
grants but never obtain another principal's credentials.

**Errors** are RFC 9457 `{PROBLEM_MEDIA_TYPE}` documents; `type` is
`{PROBLEM_TYPE_BASE}<slug>` and validation problems list each bad field in `errors`.

**Times** are RFC 3339 UTC with milliseconds. **Lists** are cursor-paginated: pass the
response's `next_cursor` as `cursor`.

**Request ids**: send `X-Request-ID` (1-64 letters, digits, '-') to correlate with the service
log; every response carries the id used.
"""

OPENAPI_TAGS: Final = [
    {"name": "grants", "description": "Request, use, renew and revoke access to pods."},
    {"name": "audit", "description": "The audit trail of every grant, for export."},
    {"name": "auth", "description": "Who the caller is and what its policies allow."},
    {"name": "operations", "description": "Health, readiness and Prometheus metrics."},
]


class FieldProblem(BaseModel):
    field: str = Field(description="Where the problem is, e.g. `body.ttl_seconds`.")
    message: str = Field(description="What is wrong with it (the submitted value is never echoed).")
    type: str | None = Field(default=None, description="Machine-readable kind of the problem.")


class Problem(BaseModel):
    """An RFC 9457 problem document. Extension members (e.g. `permission`, `max_pods`) may
    be present depending on `type`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_TYPE_BASE + "grant-not-found",
                    "title": "Grant Not Found",
                    "status": 404,
                    "detail": "grant '01jbq3z5ksxn2m8d7c4v6w9e0r' not found",
                    "instance": "/v1/grants/01jbq3z5ksxn2m8d7c4v6w9e0r",
                }
            ]
        },
    )

    type: str = Field(description=f"The problem type: `{PROBLEM_TYPE_BASE}<slug>`.")
    title: str = Field(description="A short, human-readable summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this occurrence, safe to show to users.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="The fields at fault (validation problems)."
    )


def _example(slug: str, title: str, status: int, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": "/v1/grants",
        **extra,
    }


# One documented example per status (the problem `type` tells the cases apart at run time).
_PROBLEMS: Final[dict[int, tuple[str, dict[str, Any]]]] = {
    400: ("Bad request.", _example("bad-request", "Bad Request", 400, "malformed request")),
    401: (
        "No credentials, or credentials that are not valid (`WWW-Authenticate: Bearer`).",
        _example("unauthorized", "Unauthorized", 401, "invalid credentials"),
    ),
    403: (
        "Authenticated, but not allowed: no policy permits this, or admin rights are needed.",
        _example(
            "policy-denied",
            "Forbidden",
            403,
            "no policy allows apikey:ci-payments to use scanner 'debug' in namespace 'payments'",
        ),
    ),
    404: (
        "No such grant, or one the caller may not see (the two are indistinguishable).",
        _example(
            "grant-not-found",
            "Grant Not Found",
            404,
            "grant '01jbq3z5ksxn2m8d7c4v6w9e0r' not found",
        ),
    ),
    409: (
        "The grant is not in a state that allows this (e.g. not active any more).",
        _example(
            "grant-not-active",
            "Grant Not Active",
            409,
            "grant '01jbq3z5ksxn2m8d7c4v6w9e0r' is revoked, not active",
            grant_status="revoked",
        ),
    ),
    422: (
        "The request is invalid: a field fails validation, or the target cannot be granted "
        "(missing namespace or pods, no Running pod matches, too many pods, sidecar missing).",
        {
            "type": PROBLEM_TYPE_BASE + "validation",
            "title": "Request Validation Failed",
            "status": 422,
            "detail": "invalid request: body.ttl_seconds",
            "instance": "/v1/grants",
            "errors": [
                {
                    "field": "body.ttl_seconds",
                    "message": "Input should be greater than or equal to 30",
                    "type": "greater_than_equal",
                }
            ],
        },
    ),
    413: (
        "The request body is larger than the configured limit (`max_request_body_bytes`).",
        _example(
            "content-too-large",
            "Content Too Large",
            413,
            "the request body exceeds the limit of 65536 bytes",
        ),
    ),
    429: (
        "The caller exceeded its rate limit (`rate_limit`); retry after `Retry-After` seconds.",
        _example(
            "rate-limited",
            "Too Many Requests",
            429,
            "rate limit exceeded: at most 20 requests at once and 120 per minute for each "
            "principal; retry in 1 s",
        ),
    ),
    502: (
        "The cluster refused scangate's own identity; the detail names the missing permission.",
        _example(
            "upstream-forbidden",
            "Cluster Refused scangate",
            502,
            "the cluster refused scangate: it lacks permission to create "
            'roles.rbac.authorization.k8s.io in namespace "payments"',
            permission='create roles.rbac.authorization.k8s.io in namespace "payments"',
        ),
    ),
    503: (
        "The cluster (or the database) is unreachable; retry after `Retry-After` seconds.",
        _example(
            "upstream-unavailable",
            "Service Unavailable",
            503,
            'the cluster is unavailable: cluster "default" did not answer',
        ),
    ),
}
_FASTAPI_VALIDATION_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")
_PROBLEM_REF: Final = "#/components/schemas/Problem"


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the problem statuses it can answer. A description for one
    status can be given as `_404="..."`."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        default = _PROBLEMS[status][0] if status in _PROBLEMS else "Error."
        responses[status] = {
            "model": Problem,
            "description": descriptions.get(f"_{status}", default),
        }
    return responses


def _problem_content(status: int) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": {"$ref": _PROBLEM_REF}}
    if status in _PROBLEMS:
        media["example"] = _PROBLEMS[status][1]
    return {PROBLEM_MEDIA_TYPE: media}


def _enrich_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if operation.get("security"):
        # Any authenticated call: bad credentials, the principal's rate limit, and a database
        # (or cluster) that is unavailable.
        for code in ("401", "429", "503"):
            responses.setdefault(code, {})
    if "requestBody" in operation:
        # Bodies that are not JSON at all (400) or too large to be read (413).
        for code in ("400", "413"):
            responses.setdefault(code, {})
    for code, response in responses.items():
        if not code.isdigit() or int(code) < 400:
            continue
        status = int(code)
        if not response.get("description") or response["description"] == "Validation Error":
            response["description"] = _PROBLEMS.get(status, ("Error.", {}))[0]
        response["content"] = _problem_content(status)


def enrich_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with problem+json errors, 401s and the bearer scheme described."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                _enrich_operation(operation)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    problem_schemas = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schemas.pop("$defs", {}))
    schemas["Problem"] = problem_schemas
    for scheme in components.get("securitySchemes", {}).values():
        if scheme.get("type") == "http" and scheme.get("scheme") == "bearer":
            scheme["bearerFormat"] = "scangate API key (sg_...) or CI OIDC ID token (JWT)"
    return document


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` return the enriched document (built once, on first request)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    built: dict[str, Any] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal built
        if built is None:
            built = enrich_openapi(copy.deepcopy(generate()))
        return built

    app.openapi = openapi  # type: ignore[method-assign]
