"""Which requests a policy's `matchConstraints` (or a binding's `matchResources`) select.

The rules of kube-apiserver's admission matchers (apiserver/pkg/admission/plugin/webhook/
predicates and policy/generic): namespaceSelector, objectSelector, excludeResourceRules, then
resourceRules with operations, apiGroups, apiVersions, resources (`*`, `*/*`, `pods/*`,
`*/status`), resourceNames and scope. kubesim serves one version of every resource, so
`matchPolicy` (Exact or Equivalent) cannot change the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kubesim import errors
from kubesim.admission.attributes import AdmissionAttributes, Obj
from kubesim.admission.matching import (
    label_selector_matches,
    object_selector_matches,
    rule_matches,
    selects_everything,
)
from kubesim.resources import resource
from kubesim.store import Store

NAMESPACES: Final = resource("", "namespaces")


def _is_namespace(attributes: AdmissionAttributes) -> bool:
    return attributes.resource.group == "" and attributes.resource.resource == "namespaces"


def matches_resources(
    match: Mapping[str, Any], attributes: AdmissionAttributes, store: Store
) -> bool:
    """True when `match` (a MatchResources) selects the request. An empty `resourceRules`
    selects every resource (only bindings may leave it empty; validation enforces that)."""
    if not _namespace_selected(match.get("namespaceSelector"), attributes, store):
        return False
    if not object_selector_matches(match.get("objectSelector"), attributes):
        return False
    if any(_rule_matches(rule, attributes) for rule in match.get("excludeResourceRules") or []):
        return False
    rules = match.get("resourceRules") or []
    return not rules or any(_rule_matches(rule, attributes) for rule in rules)


def namespace_object(attributes: AdmissionAttributes, store: Store) -> Obj | None:
    """The request's Namespace as CEL's `namespaceObject` sees it; None for cluster-scoped
    requests (a Namespace itself counts as cluster-scoped)."""
    if not attributes.namespace or _is_namespace(attributes):
        return None
    namespace = store.get(NAMESPACES, "", attributes.namespace)
    if namespace is None:
        return None
    kept = (
        "name",
        "generateName",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "labels",
        "annotations",
        "finalizers",
    )
    meta = {k: v for k, v in namespace["metadata"].items() if k in kept}
    return {
        "metadata": meta,
        "spec": namespace.get("spec") or {},
        "status": namespace.get("status") or {},
    }


def _namespace_selected(
    selector: Mapping[str, Any] | None, attributes: AdmissionAttributes, store: Store
) -> bool:
    is_namespace = _is_namespace(attributes)
    if not attributes.namespace and not is_namespace:
        # Cluster-scoped requests (other than namespaces) are never exempted by it.
        return True
    if selects_everything(selector):
        return True
    if is_namespace:
        own = attributes.object or attributes.old_object or {}
        labels = (own.get("metadata") or {}).get("labels") or {}
    else:
        namespace = store.get(NAMESPACES, "", attributes.namespace)
        if namespace is None:
            raise errors.not_found(NAMESPACES, attributes.namespace)
        labels = namespace["metadata"].get("labels") or {}
    return label_selector_matches(selector, labels)


def _rule_matches(rule: Mapping[str, Any], attributes: AdmissionAttributes) -> bool:
    """rules.Matcher, then the NamedRuleWithOperations' resourceNames (empty: every name)."""
    names = rule.get("resourceNames") or []
    return rule_matches(rule, attributes) and (not names or attributes.name in names)
