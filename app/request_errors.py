"""Explanations for requests the API cannot read at all: a body that is not JSON, a body sent
without `Content-Type: application/json`, a method the path does not take.

`app.errors` calls these while it builds the problem+json answer; each returns what the caller
needs to fix the request (where the JSON breaks, the header to send, the endpoint to use) and
never repeats what the caller sent (a misplaced token must not be reflected): JSON syntax
messages come from the `json` module's fixed texts, media types and methods are named only
when they look like ones.
"""

from __future__ import annotations

import email.message
import re
from collections.abc import Sequence
from typing import Any, Final

from fastapi import Request

JSON_MEDIA_TYPE: Final = "application/json"
_SEND_JSON: Final = f"send a JSON object with the header Content-Type: {JSON_MEDIA_TYPE}"
_MEDIA_TYPE: Final = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}/[a-z0-9][a-z0-9.+-]{0,63}$")
_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
# Methods people reach for by REST habit, and the endpoint that does what they meant.
_METHOD_HINTS: Final[dict[tuple[str, str], str]] = {
    ("DELETE", "/v1/grants/{grant_id}"): "to end a grant, use POST /v1/grants/{grant_id}/revoke",
    ("PUT", "/v1/grants/{grant_id}"): "to extend a grant, use POST /v1/grants/{grant_id}/renew",
    ("PATCH", "/v1/grants/{grant_id}"): "to extend a grant, use POST /v1/grants/{grant_id}/renew",
    ("DELETE", "/v1/grants"): "to end a grant, use POST /v1/grants/{grant_id}/revoke",
}


def json_syntax_error(error: dict[str, Any], document: Any) -> str | None:
    """'... at line L, column C' for FastAPI's `json_invalid` error, else None."""
    if error.get("type") != "json_invalid":
        return None
    loc = tuple(error.get("loc", ()))
    position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    reason = str((error.get("ctx") or {}).get("error", "invalid JSON"))
    # json's messages are fixed phrases ("Expecting ',' delimiter"); never the document.
    if not re.fullmatch(r"[A-Za-z ',:\"]{1,60}", reason):
        reason = "invalid JSON"
    reason = reason.removesuffix(" at")  # "Unterminated string starting at" + " at line ..."
    where = ""
    if position is not None and isinstance(document, str | bytes):
        text = document.decode("utf-8", "replace") if isinstance(document, bytes) else document
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        where = f" at line {line}, column {column}"
    return f"the request body is not valid JSON: {reason}{where}; {_SEND_JSON}"


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def content_type_error(request: Request, errors: Sequence[dict[str, Any]]) -> str | None:
    """Why a body sent as something other than JSON was not read, else None.

    FastAPI only parses bodies declared as JSON; any other (or no) Content-Type leaves the raw
    bytes, which fail validation with a message about dictionaries that helps nobody."""
    content_type = request.headers.get("content-type")
    if _is_json(content_type):
        return None
    if not any(tuple(e.get("loc", ())) == ("body",) and e.get("type") != "missing" for e in errors):
        return None
    if not content_type:
        sent = "without a Content-Type header"
    else:
        media_type = content_type.split(";", 1)[0].strip().lower()
        shown = media_type if _MEDIA_TYPE.match(media_type) else "another type"
        sent = f"as {shown}"
    return f"the request body was sent {sent}; {_SEND_JSON}"


def _allowed_methods(request: Request, template: str | None, reported: str | None) -> list[str]:
    """Every method the path takes. Starlette's `Allow` names only the first route that matched
    the path; the OpenAPI document knows all of them (routes left out of it keep Starlette's)."""
    allowed = {m.strip() for m in (reported or "").split(",") if m.strip()}
    openapi = getattr(request.app, "openapi", None)
    if template is not None and callable(openapi):
        operations = openapi().get("paths", {}).get(template, {})
        allowed.update(m.upper() for m in operations if m.upper() in _KNOWN_METHODS)
    return sorted(allowed)


def method_not_allowed(request: Request, reported_allow: str | None) -> tuple[str, dict[str, str]]:
    """The detail and headers of a 405: the methods the path takes (`Allow`), and the endpoint
    that does what the caller probably meant."""
    route_path = getattr(request.scope.get("route"), "path", None)
    template = route_path if isinstance(route_path, str) else None
    allowed = _allowed_methods(request, template, reported_allow)
    method = request.method if request.method in _KNOWN_METHODS else "this method"
    where = f" on {template}" if template else ""
    detail = f"{method} is not allowed{where}"
    if allowed:
        detail += f"; allowed: {', '.join(allowed)}"
    hint = _METHOD_HINTS.get((request.method, template)) if template else None
    if hint:
        detail += f"; {hint}"
    return detail, ({"Allow": ", ".join(allowed)} if allowed else {})
