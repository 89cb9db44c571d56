"""Label and field selectors for list (and deletecollection) requests.

Label selectors are parsed and matched by `label_selectors` (apimachinery's grammar and rules);
a selector it refuses is a 400. Field selectors are read as fields.ParseSelector reads them
(`=`, `==`, `!=`; backslash escapes in values; no trimming) and only on the fields each
resource indexes; other fields are a 400, as on a real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from kubesim.errors import ApiError, bad_request
from kubesim.label_selectors import SelectorSyntaxError, label_matcher
from kubesim.resources import ResourceType

Predicate = Callable[[Mapping[str, Any]], bool]

# fields.ParseSelector: the first `!=`, `==` or `=` (tried in that order) splits a term.
_FIELD_TERM: Final = re.compile(r"^(.*?)(!=|==|=)(.*)$", re.DOTALL)

_COMMON_FIELDS: Final = ("metadata.name", "metadata.namespace")
_FIELDS: Final = {
    "Pod": (
        *_COMMON_FIELDS,
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Secret": (*_COMMON_FIELDS, "type"),
    "Namespace": (*_COMMON_FIELDS, "status.phase"),
}


class FieldSelectorError(ValueError):
    """A field selector fields.ParseSelector refuses; the message is its wording."""


def _split_field_terms(selector: str) -> list[str]:
    """Terms split on commas a backslash does not escape (escapes kept for unescaping)."""
    if not selector:
        return []
    terms: list[str] = []
    current: list[str] = []
    escaped = False
    for char in selector:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append("".join(current))
            current = []
            continue
        current.append(char)
    terms.append("".join(current))
    return terms


def _unescape(value: str) -> str:
    """fields.UnescapeValue: `\\\\`, `\\,` and `\\=` are escapes; a bare `,` or `=` is an error."""
    out, escaped = [], False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise FieldSelectorError(
                    f"invalid field selector: invalid escape sequence: \\{char}"
                )
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise FieldSelectorError(
                f"invalid field selector: unescaped character in value: {char}"
            )
        else:
            out.append(char)
    if escaped:
        raise FieldSelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(selector: str) -> list[tuple[str, str, str]]:
    """(field, operator, value) terms as fields.ParseSelector reads them: the first `!=`, `==`
    or `=` splits a term, nothing is trimmed, values are unescaped."""
    terms: list[tuple[str, str, str]] = []
    for term in sorted(_split_field_terms(selector)):
        if not term:
            continue
        match = _FIELD_TERM.match(term)
        if match is None:
            raise FieldSelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
        field, operator, value = match.groups()
        terms.append((field, operator, _unescape(value)))
    return terms


def label_selector(selector: str) -> Predicate:
    """A predicate over objects from a label selector string; raises 400 when malformed."""
    try:
        matches_labels = label_matcher(selector)
    except SelectorSyntaxError as exc:
        raise bad_request(str(exc)) from None

    def matches(obj: Mapping[str, Any]) -> bool:
        return matches_labels((obj.get("metadata") or {}).get("labels") or {})

    return matches


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_selector(rt: ResourceType, selector: str) -> Predicate:
    """A predicate from a field selector string; malformed selectors and unsupported fields
    are a 400."""
    allowed = _FIELDS.get(rt.kind, _COMMON_FIELDS)
    try:
        terms = parse_field_selector(selector)
    except FieldSelectorError as exc:
        raise bad_request(str(exc)) from None
    checks: list[tuple[str, bool, str]] = []
    for path, operator, value in terms:
        if path not in allowed:
            raise ApiError(400, "BadRequest", f"field label not supported: {path}")
        checks.append((path, operator != "!=", value))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, p) == v) == equal for p, equal, v in checks)

    return matches
