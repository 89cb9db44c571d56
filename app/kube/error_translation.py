"""Translates `ApiException`, connection errors and undecodable answers into the app/kube
error tree.

The translated message names the operation, the cluster and (for client errors) the API server's
Status `message`; it never carries response bodies verbatim, request headers or tokens.
"""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes.aio.client.exceptions import ApiException
from pydantic import ValidationError

from app.kube.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeInvalid,
    KubeMalformedResponse,
    KubeNotFound,
    KubeUnauthorized,
    KubeUnavailable,
)
from app.kube.operations import Operation, qualify_resource

# Statuses worth another try: throttling and the transient server/gateway failures.
RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})

_MAX_MESSAGE: Final = 300

# 'pods "web-0" is forbidden: User "x" cannot create resource "roles" in API group
#  "rbac.authorization.k8s.io" in the namespace "payments"' (or '... at the cluster scope')
_RBAC_DENIED: Final = re.compile(
    r'cannot (?P<verb>[\w*-]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| at the cluster scope)?'
)
# Escalation prevention lists the rules the creator does not hold:
# '... is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""],
#  Resources:["pods/exec"], ResourceNames:["web-0"], Verbs:["create"]}'
_NOT_HELD_RULE: Final = re.compile(r"\{([^{}]*Verbs:\[[^\]]*\][^{}]*)\}")
_RULE_FIELD: Final = re.compile(r"(APIGroups|Resources|Verbs):\[([^\]]*)\]")
_QUOTED: Final = re.compile(r'"((?:[^"\\]|\\.)*)"')
# A RoleBinding whose Role does not exist is refused with 403 when the creator lacks `bind`:
# '... is forbidden: roles.rbac.authorization.k8s.io "scangate-x" not found'
_ROLE_NOT_FOUND: Final = re.compile(
    r'roles\.rbac\.authorization\.k8s\.io "(?P<name>[^"]+)" not found'
)
_BEARER: Final = re.compile(r"(?i)bearer\s+\S+")


@dataclass(frozen=True)
class ApiStatus:
    """The parts of a Kubernetes `Status` body that are safe to use."""

    code: int
    reason: str
    message: str  # whole (for parsing), newlines flattened, bearer tokens redacted
    retry_after: float | None

    @property
    def short_message(self) -> str:
        """The message cut to a length fit for an error shown to users."""
        if len(self.message) <= _MAX_MESSAGE:
            return self.message
        return self.message[: _MAX_MESSAGE - 1] + "…"


def api_status(exc: ApiException) -> ApiStatus:
    code = int(exc.status or 0)
    reason = ""
    message = ""
    body: Any = None
    if exc.body:
        try:
            body = json.loads(exc.body)
        except (TypeError, ValueError):
            body = None
    # Only a JSON Status is trusted; an HTML page from a proxy is ignored entirely.
    if isinstance(body, dict) and body.get("kind") == "Status":
        reason = str(body.get("reason") or "")
        message = _safe_text(str(body.get("message") or ""))
    retry_after = parse_retry_after(_header(exc, "Retry-After"))
    return ApiStatus(code=code, reason=reason, message=message, retry_after=retry_after)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if absent/invalid."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def missing_permission(message: str, operation: Operation) -> str:
    """The permission the API server says scangate lacks, in kubectl's words."""
    denied = _RBAC_DENIED.search(message)
    if denied:
        resource = qualify_resource(denied["resource"], denied["group"] or "")
        namespace = denied["namespace"]
        scope = f'in namespace "{namespace}"' if namespace is not None else "at cluster scope"
        return f"{denied['verb']} {resource} {scope}"
    missing_role = _ROLE_NOT_FOUND.search(message)
    if missing_role:
        # Without `bind`, the API server resolves the Role to check escalation, so it must
        # exist before the RoleBinding.
        return (
            f"bind roles.rbac.authorization.k8s.io {operation.scope} "
            f'(or create the Role "{missing_role["name"]}" first: it does not exist)'
        )
    # Once each: a rule per pod repeats the same permission for every pod.
    not_held = list(dict.fromkeys(_describe_rule(r) for r in _NOT_HELD_RULE.findall(message)))
    if not_held:
        # To create a Role (or bind one) RBAC requires holding every permission in it
        # (escalation prevention); name what is missing, not the create itself.
        return f"{', '.join(not_held)} {operation.scope} (RBAC escalation prevention)"
    return operation.permission


def _describe_rule(rule: str) -> str:
    fields = {key: _split_list(value) for key, value in _RULE_FIELD.findall(rule)}
    groups = fields.get("APIGroups") or [""]
    resources = [qualify_resource(r, g) for g in groups for r in fields.get("Resources", [])]
    return f"{'/'.join(fields.get('Verbs', []))} {','.join(resources)}".strip()


def _split_list(value: str) -> list[str]:
    # Go's %q of a []string separates items by spaces: ["create" "get"].
    return [json.loads(f'"{item}"') for item in _QUOTED.findall(value)]


def translate_api_exception(exc: ApiException, operation: Operation, cluster: str) -> KubeError:
    status = api_status(exc)
    where = f'{operation} on cluster "{cluster}"'
    detail = f": {status.short_message}" if status.message else ""
    code = status.code
    if code == 401:
        return KubeUnauthorized(
            f"{where} failed: the API server rejected scangate's credentials",
            permission="authenticate to the API server (valid credentials)",
        )
    if code == 403:
        permission = missing_permission(status.message, operation)
        return KubeForbidden(
            f"{where} is forbidden: scangate lacks the permission {permission}",
            permission=permission,
        )
    if code == 404:
        return KubeNotFound(f"{where}: not found{detail}")
    if code in (409, 410):
        return KubeConflict(f"{where}: conflict{detail}")
    if code in (400, 422):
        return KubeInvalid(f"{where}: rejected as invalid{detail}")
    if code == 429 or code >= 500:
        return KubeUnavailable(
            f"{where} failed: the API server answered HTTP {code}",
            retry_after=status.retry_after,
        )
    return KubeError(f"{where} failed with HTTP {code}{detail}")


def translate_transport_error(exc: BaseException, operation: Operation, cluster: str) -> KubeError:
    # Only the exception's class name: connection errors' messages embed URLs and addresses.
    return KubeUnavailable(
        f'{operation} on cluster "{cluster}" failed: cannot reach the API server '
        f"({type(exc).__name__})"
    )


def translate_certificate_error(
    exc: BaseException, operation: Operation, cluster: str
) -> KubeError:
    return KubeUnavailable(
        f'{operation} on cluster "{cluster}" failed: TLS connection to the API server: '
        "certificate verification failed"
    )


def translate_undecodable_answer(
    exc: ValueError, operation: Operation, cluster: str
) -> KubeMalformedResponse:
    """An answer the client could not decode. The client's models are pydantic models, each
    validated on its own, so a `ValidationError` names the innermost model (its title) and the
    field inside it as the API spells it; the refused value is never repeated."""
    where = f'{operation} on cluster "{cluster}"'
    if isinstance(exc, ValidationError) and exc.error_count():
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "(the object)"
        described = f"{field} ({exc.title})"
        return KubeMalformedResponse(
            f"{where}: the answer does not decode: field {described}: {first['msg']}",
            field=described,
        )
    # Not JSON at all (a proxy's page with a 200): only the kind of error, as a parser's
    # message can quote the body.
    return KubeMalformedResponse(
        f"{where}: the answer does not decode: {type(exc).__name__}", field=None
    )


def _header(exc: ApiException, name: str) -> str | None:
    headers = exc.headers
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    return None if value is None else str(value)


def _safe_text(text: str) -> str:
    return _BEARER.sub("Bearer <redacted>", text.replace("\n", " ").strip())
