"""The error tree of the service and the one handler that turns errors into RFC 9457 problems.

Domain modules raise subclasses of `ScangateError` (`GrantNotFound(NotFoundError)`,
`PolicyDenied(ForbiddenError)`...) and never build HTTP responses themselves. Every error leaves
the service as `application/problem+json`:

    {"type": "https://scangate.dev/problems/<slug>", "title": ..., "status": ...,
     "detail": ..., "instance": "/v1/grants/...", "errors": [{"field": ..., "message": ...}]}

Security rules enforced here rather than trusted to every caller:
- request validation errors name the field and say what is wrong, but never echo the submitted
  value (a caller may have put a token or key in the wrong field);
- `instance` (and the log line of a 5xx) repeats the request path only when it looks like one
  of scangate's own paths (`safe_path`), so a credential pasted into a URL is never reflected;
- a database that cannot be reached (or is restarting) is an outage like an unreachable
  cluster: 503 with `Retry-After` (`app.db.errors` decides which failures are outages);
- a body that is not JSON (or not sent as JSON) and a wrong method get an answer that says how
  to fix the request: the line and column where the JSON breaks and the header to send, or the
  `Allow`ed methods and the endpoint meant (`app.request_errors`);
- unexpected exceptions become a bare 500 without internals; they are logged with a traceback
  for the operator. There is deliberately no catch-all that maps unknown errors to 4xx: a bug must
  look like a bug.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.errors import database_unavailable
from app.kube.errors import KubeForbidden, KubeUnavailable
from app.observability.credentials import mask_credentials
from app.request_errors import content_type_error, json_syntax_error, method_not_allowed

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
PROBLEM_TYPE_BASE: Final = "https://scangate.dev/problems/"
# Keys of the problem object that extension members must never overwrite.
_STANDARD_MEMBERS: Final = frozenset({"type", "title", "status", "detail", "instance"})
# Sent with 503s that do not know better: long enough not to hammer a struggling cluster.
DEFAULT_RETRY_AFTER_SECONDS: Final = 5
# Request fields are snake_case (headers kebab-case); any other key in an error location came
# from the caller (an unknown body key) and is not repeated: it could be anything pasted there.
_FIELD_PART: Final = re.compile(r"^[a-z_][a-z0-9_-]{0,63}$")
# Segments of scangate's own paths: `v1`, `grants`, grant ids, `kubeconfig`... API keys contain
# '_', and tokens contain capitals and '.', so neither can pass for one.
_SAFE_SEGMENT: Final = re.compile(r"^[0-9a-z-]{1,64}$")

logger = logging.getLogger(__name__)


class ScangateError(Exception):
    """Base of every error the API reports on purpose. `detail` is shown to the caller as is,
    so it must never contain tokens, keys or raw upstream bodies."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    type_slug: ClassVar[str] = "internal"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.type_slug

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem+json body (without transport concerns such as headers)."""
        body: dict[str, Any] = {k: v for k, v in self.extra.items() if k not in _STANDARD_MEMBERS}
        body.update(type=self.type_uri, title=self.title, status=self.status, detail=self.detail)
        if instance is not None:
            body["instance"] = instance
        if self.field is not None:
            body["errors"] = [{"field": self.field, "message": self.detail}]
        return body


class Unauthorized(ScangateError):
    """No or invalid credentials. Always carries `WWW-Authenticate` (RFC 6750)."""

    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"

    def __init__(
        self, detail: str = "authentication required", *, error: str | None = None, **extra: Any
    ) -> None:
        # RFC 6750 §3: no `error` attribute when the request carried no credentials at all;
        # `invalid_token` when it carried ones we reject.
        challenge = 'Bearer realm="scangate"'
        if error is not None:
            challenge += f', error="{error}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge}, **extra)


class ForbiddenError(ScangateError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFoundError(ScangateError):
    status = 404
    title = "Not Found"
    type_slug = "not-found"


class ConflictError(ScangateError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class UnprocessableError(ScangateError):
    status = 422
    title = "Unprocessable Content"
    type_slug = "unprocessable"


class UpstreamForbidden(ScangateError):
    """The cluster refused scangate's own identity: an operator must fix RBAC. 502 because the
    caller did nothing wrong; `detail` names the missing permission."""

    status = 502
    title = "Cluster Refused scangate"
    type_slug = "upstream-forbidden"


class UpstreamUnavailable(ScangateError):
    """The cluster (or another dependency) could not be reached; retry later."""

    status = 503
    title = "Service Unavailable"
    type_slug = "upstream-unavailable"

    def __init__(self, detail: str, *, retry_after: float | None = None, **extra: Any) -> None:
        seconds = DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after
        # Retry-After takes whole seconds; round up so a client never retries too early.
        whole = max(1, math.ceil(seconds))
        super().__init__(detail, headers={"Retry-After": str(whole)}, **extra)
        self.retry_after = whole


def problem_response(
    status: int,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        dict(body), status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


def safe_path(request: Request) -> str | None:
    """The request path if every segment looks like one of scangate's own, else None."""
    path = request.url.path
    segments = path.strip("/").split("/")
    if path == "/" or all(_SAFE_SEGMENT.match(segment) for segment in segments):
        return path
    return None


def field_name(loc: Sequence[int | str]) -> str:
    """`("body", "pods", 0)` -> `"body.pods[0]"`: how a client would point at the field."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name


def _safe_location(loc: Sequence[int | str]) -> str:
    return field_name(
        [p if isinstance(p, int) or _FIELD_PART.match(p) else "(unknown key)" for p in loc]
    )


def _unreadable_body_problem(
    request: Request, exc: RequestValidationError, instance: str | None
) -> dict[str, Any] | None:
    """A body that is not JSON, or not sent as JSON: say where it breaks and what to send,
    rather than quoting a byte offset or a remark about dictionaries."""
    errors = list(exc.errors())
    message = next(
        (m for m in (json_syntax_error(e, exc.body) for e in errors) if m is not None), None
    )
    if message is None:
        message = content_type_error(request, errors)
    if message is None:
        return None
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + "validation",
        "title": "Request Validation Failed",
        "status": 422,
        "detail": message,
        "instance": instance,
        "errors": [{"field": "body", "message": message, "type": "body_not_json"}],
    }
    return _without_absent_instance(body)


def _validation_problem(exc: RequestValidationError, instance: str | None) -> dict[str, Any]:
    # Only `loc`, `msg` and `type` are copied. Pydantic's `input` (and `ctx`, which can embed
    # it) is dropped on purpose: echoing submitted values would reflect a misplaced secret.
    # Messages of our own validators may quote a value; credential-shaped text is masked.
    errors = [
        {
            "field": _safe_location(tuple(error.get("loc", ()))),
            "message": mask_credentials(str(error.get("msg", "invalid value"))),
            "type": str(error.get("type", "value_error")),
        }
        for error in exc.errors()
    ]
    named = ", ".join(dict.fromkeys(e["field"] for e in errors if e["field"]))
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + "validation",
        "title": "Request Validation Failed",
        "status": 422,
        "detail": f"invalid request: {named}" if named else "invalid request",
        "instance": instance,
        "errors": errors,
    }
    return _without_absent_instance(body)


def _without_absent_instance(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("instance") is None:
        body.pop("instance", None)
    return body


async def _handle_scangate_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ScangateError)
    if exc.status >= 500:
        # Operators need to see 5xx the caller got; detail is already safe to log.
        path = safe_path(request) or "(path withheld)"
        logger.warning("%s %s -> %d %s", request.method, path, exc.status, exc.detail)
    return problem_response(exc.status, exc.problem(safe_path(request)), exc.headers)


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    instance = safe_path(request)
    body = _unreadable_body_problem(request, exc, instance)
    return problem_response(422, body or _validation_problem(exc, instance))


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    # Routing errors (404 unknown path, 405 wrong method) raised by Starlette/FastAPI itself.
    assert isinstance(exc, StarletteHTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        detail, allow = method_not_allowed(request, headers.get("Allow"))
        headers.update(allow)
    body = {
        "type": "about:blank",
        "title": phrase,
        "status": exc.status_code,
        "detail": detail,
        "instance": safe_path(request),
    }
    return problem_response(exc.status_code, _without_absent_instance(body), headers)


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's ServerErrorMiddleware calls this for anything unhandled and then re-raises, so
    # the server logs the traceback too; the caller only learns that it was our fault.
    logger.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        safe_path(request) or "(path withheld)",
        exc_info=exc,
    )
    body = {
        "type": PROBLEM_TYPE_BASE + "internal",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "an unexpected error occurred; the operator can find it in the service log",
        "instance": safe_path(request),
    }
    return problem_response(500, _without_absent_instance(body))


async def _handle_kube_error(request: Request, exc: Exception) -> JSONResponse:
    # Safety net: services should translate cluster errors themselves, but an untranslated
    # KubeForbidden / KubeUnavailable still means "operator must fix RBAC" / "retry later",
    # never a 500. Other KubeErrors reaching here are bugs and stay 500.
    error: ScangateError
    if isinstance(exc, KubeForbidden):
        error = UpstreamForbidden(str(exc), permission=exc.permission)
    elif isinstance(exc, KubeUnavailable):
        error = UpstreamUnavailable(str(exc), retry_after=exc.retry_after)
    else:
        return await _handle_unexpected(request, exc)
    return await _handle_scangate_error(request, error)


async def _handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    # A database that is down or restarting is an outage, not a bug: 503 with Retry-After, as
    # for an unreachable cluster, so clients retry and the service recovers by itself. Only the
    # exception's type is logged: driver messages name hosts and users.
    if not database_unavailable(exc):
        return await _handle_unexpected(request, exc)
    logger.warning(
        "%s %s: the database is unavailable (%s)",
        request.method,
        safe_path(request) or "(path withheld)",
        type(getattr(exc, "orig", None) or exc).__name__,
    )
    error = UpstreamUnavailable("the database is unavailable; retry later")
    return problem_response(error.status, error.problem(safe_path(request)), error.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on `app` (call once from the app factory)."""
    app.add_exception_handler(ScangateError, _handle_scangate_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(Exception, _handle_unexpected)
    app.add_exception_handler(KubeForbidden, _handle_kube_error)
    app.add_exception_handler(KubeUnavailable, _handle_kube_error)
    app.add_exception_handler(SQLAlchemyError, _handle_database_error)
