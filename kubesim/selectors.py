"""Label and field selectors for list (and deletecollection) requests.

Label selectors are parsed and matched by `label_selectors` (apimachinery's grammar and rules);
a selector it refuses is a 400. Field selectors only support `=`, `==` and `!=` on the fields
each resource indexes; other fields are a 400, as on a real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from kubesim.errors import ApiError, bad_request
from kubesim.label_selectors import SelectorSyntaxError, label_matcher
from kubesim.resources import ResourceType

Predicate = Callable[[Mapping[str, Any]], bool]

_EQ_RE: Final = re.compile(r"^\s*([^\s!=,()]+)\s*(==|=|!=)\s*([^\s!=,()]*)\s*$")

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


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside `in (...)` value lists."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


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
    """A predicate from a field selector string; unsupported fields are a 400."""
    allowed = _FIELDS.get(rt.kind, _COMMON_FIELDS)
    checks: list[tuple[str, bool, str]] = []
    for term in _split_terms(selector):
        match = _EQ_RE.match(term)
        if not match:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        path, op, value = match.groups()
        if path not in allowed:
            raise ApiError(
                400,
                "BadRequest",
                f"field label not supported: {path}",
            )
        checks.append((path, op != "!=", value))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, p) == v) == equal for p, equal, v in checks)

    return matches
