"""Which requests a webhook (or a policy's match rules) applies to: kube-apiserver's
rules.Matcher, namespace.Matcher and object.Matcher over kubesim's label selectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubesim.admission.attributes import CONNECT, AdmissionAttributes
from kubesim.selectors import label_selector


def rule_matches(rule: Mapping[str, Any], attributes: AdmissionAttributes) -> bool:
    """rules.Matcher: scope, operation, group, version and resource[/subresource]."""
    gvr = attributes.resource
    scope = rule.get("scope") or "*"
    is_namespace = gvr.group == "" and gvr.resource == "namespaces"
    if scope == "Namespaced" and (is_namespace or not attributes.namespace):
        return False
    if scope == "Cluster" and not (is_namespace or not attributes.namespace):
        return False
    operations = rule.get("operations") or []
    if "*" not in operations and attributes.operation not in operations:
        return False
    for key, value in (("apiGroups", gvr.group), ("apiVersions", gvr.version)):
        allowed = rule.get(key) or []
        if "*" not in allowed and value not in allowed:
            return False
    for entry in rule.get("resources") or []:
        res, _, sub = str(entry).partition("/")
        if res in ("*", gvr.resource) and sub in ("*", attributes.subresource):
            return True
    return False


def selector_terms(selector: Mapping[str, Any]) -> list[str]:
    """A LabelSelector as the terms of the equivalent selector string."""
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator")
        values = ",".join(expression.get("values") or [])
        terms.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }.get(str(operator), key)
        )
    return terms


def selector_matches(selector: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    return label_selector(",".join(selector_terms(selector)))(obj)


def object_selector_matches(selector: Mapping[str, Any], attributes: AdmissionAttributes) -> bool:
    """object.Matcher: an empty selector matches everything; otherwise the object's or the
    old object's labels must match (CONNECT options have no labels, so never)."""
    if not selector_terms(selector):
        return True
    candidates = [attributes.old_object]
    if attributes.operation != CONNECT:
        candidates.append(attributes.object)
    return any(obj is not None and selector_matches(selector, obj) for obj in candidates)
