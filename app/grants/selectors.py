"""Syntax of Kubernetes names and label selectors, checked before anything reaches a cluster.

Validating here (rather than letting the API server answer 400) gives callers a 422 that names
the field, and guarantees the Role never carries a name the API server would reinterpret.
The grammar follows k8s.io/apimachinery `labels.Parse` for the operators scangate accepts:
`k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`.
"""

from __future__ import annotations

import re
from typing import Final

_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_LABEL_NAME: Final = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_SET_REQUIREMENT: Final = re.compile(
    r"^(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$"
)
_EQUALITY_REQUIREMENT: Final = re.compile(
    r"^(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)$"
)
_EXISTS_REQUIREMENT: Final = re.compile(r"^(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)$")


def is_dns1123_label(value: str) -> bool:
    """Namespace and container names: at most 63 lowercase alphanumerics and '-'."""
    return len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    """Pod names: at most 253 characters of dot-separated DNS labels."""
    return len(value) <= 253 and _DNS_SUBDOMAIN.fullmatch(value) is not None


def _label_key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and not (prefix and is_dns1123_subdomain(prefix)):
        return f"label key {key!r} has an invalid prefix"
    if len(name) > 63 or _LABEL_NAME.fullmatch(name) is None:
        return f"label key {key!r} is not a valid label name"
    return None


def _label_value_problem(value: str) -> str | None:
    if value == "":
        return None
    if len(value) > 63 or _LABEL_NAME.fullmatch(value) is None:
        return f"label value {value!r} is not valid"
    return None


def _split_requirements(selector: str) -> list[str]:
    """Split on commas that are not inside a `( ... )` value set."""
    parts: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(selector[start:index])
            start = index + 1
    parts.append(selector[start:])
    return [part.strip() for part in parts]


def _requirement_problem(requirement: str) -> str | None:
    if not requirement:
        return "empty requirement (stray comma?)"
    if match := _SET_REQUIREMENT.match(requirement):
        values = [value.strip() for value in match["values"].split(",")]
        if values == [""]:
            return f"{requirement!r}: a set needs at least one value"
        problems = [_label_value_problem(value) for value in values]
        return _label_key_problem(match["key"]) or next((p for p in problems if p), None)
    if match := _EQUALITY_REQUIREMENT.match(requirement):
        return _label_key_problem(match["key"]) or _label_value_problem(match["value"])
    if match := _EXISTS_REQUIREMENT.match(requirement):
        return _label_key_problem(match["key"])
    return f"{requirement!r} is not a label selector requirement"


def label_selector_problem(selector: str) -> str | None:
    """Why `selector` is not an acceptable label selector, or None if it is.

    An empty selector is refused: it would match every pod in the namespace, which is the
    "label-based access that allows every pod" failure scangate exists to prevent.
    """
    if not selector.strip():
        return "must not be empty (an empty selector matches every pod)"
    if selector.count("(") != selector.count(")"):
        return "unbalanced parentheses"
    for requirement in _split_requirements(selector):
        problem = _requirement_problem(requirement)
        if problem:
            return problem
    return None
