"""Which requests a webhook or a policy applies to, the matchers kube-apiserver shares between
them: rules.Matcher, object.Matcher, label selectors, and matchconditions.Matcher (CEL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from kubesim.admission.attributes import CONNECT, AdmissionAttributes

# Admission policies never judge policies or bindings (the policy plugin's isPolicyResource),
# so a bad one cannot lock itself in; webhooks skip these and their own configurations.
POLICY_RESOURCES: Final = frozenset(
    {
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "mutatingadmissionpolicies",
        "mutatingadmissionpolicybindings",
    }
)


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


def selects_everything(selector: Mapping[str, Any] | None) -> bool:
    """An absent selector, or one without requirements (`{}`, `{matchLabels: {}}`)."""
    return not selector or not (selector.get("matchLabels") or selector.get("matchExpressions"))


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics."""
    if selector is None or selects_everything(selector):
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator = requirement.get("key", ""), requirement.get("operator", "")
        values = requirement.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def labels_of(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def object_selector_matches(
    selector: Mapping[str, Any] | None, attributes: AdmissionAttributes
) -> bool:
    """object.Matcher: an empty selector matches everything; otherwise the object's or the
    old object's labels must match (a label removal still matches; CONNECT options have no
    labels, so never)."""
    if selects_everything(selector):
        return True
    candidates = [attributes.old_object]
    if attributes.operation != CONNECT:
        candidates.append(attributes.object)
    return any(c is not None and label_selector_matches(selector, labels_of(c)) for c in candidates)


class ConditionError(Exception):
    """A match condition that could not be evaluated; the message is the apiserver's."""


def match_conditions_result(
    conditions: list[Any], evaluate: Callable[[str], Any]
) -> tuple[bool, str]:
    """matchconditions.Matcher: (False, "") as soon as one condition is false, errors or not;
    otherwise (True, "") or (True, the errors aggregated) when some could not be evaluated
    (`evaluate` raised ConditionError, or gave no bool), for the caller's failurePolicy."""
    failures: list[str] = []
    for condition in conditions:
        expression = str(condition.get("expression", ""))
        try:
            result = evaluate(expression)
        except ConditionError as exc:
            failures.append(str(exc))
            continue
        if result is False:
            return False, ""
        if result is not True:
            failures.append(f"expression '{expression}' resulted in error: no such overload")
    if not failures:
        return True, ""
    return True, failures[0] if len(failures) == 1 else "[" + ", ".join(failures) + "]"
