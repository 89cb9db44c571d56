"""RBAC PolicyRule semantics: does a rule allow a request, and does one rule set cover another.

This module owns the pure, object-free half of kubesim's RBAC: the matching functions of
Kubernetes' ``pkg/apis/rbac/v1/evaluation_helpers.go`` (used by the authorizer for every request)
and the ``Covers`` comparison of ``component-helpers/auth/rbac/validation`` (used by escalation
prevention when a Role or binding is written). They are two different algorithms in Kubernetes
and they stay two different algorithms here: a request is matched with the authorizer's rules,
a rule being *granted* is broken down and compared literally. Keeping them apart is what makes
``resources: ["pods/*"]`` behave as in a real cluster (it authorizes nothing, see
``resource_matches``) while still being grantable by someone who holds ``pods/*`` literally.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VERB_ALL = "*"
API_GROUP_ALL = "*"
RESOURCE_ALL = "*"
NON_RESOURCE_ALL = "*"


@dataclass(frozen=True)
class PolicyRule:
    """One rbac.authorization.k8s.io/v1 PolicyRule, normalised to tuples (missing list = empty)."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, rule: Mapping[str, Any]) -> PolicyRule:
        return cls(
            verbs=_strings(rule.get("verbs")),
            api_groups=_strings(rule.get("apiGroups")),
            resources=_strings(rule.get("resources")),
            resource_names=_strings(rule.get("resourceNames")),
            non_resource_urls=_strings(rule.get("nonResourceURLs")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The rule as the API serialises it: empty optional lists are omitted (omitempty)."""
        out: dict[str, Any] = {"verbs": list(self.verbs)}
        if self.api_groups:
            out["apiGroups"] = list(self.api_groups)
        if self.resources:
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        return out


def parse_rules(rules: Iterable[Mapping[str, Any]] | None) -> list[PolicyRule]:
    return [PolicyRule.from_mapping(rule) for rule in rules or ()]


def _strings(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(str(item) for item in value)


# --- authorization: does one rule allow one request (evaluation_helpers.go) -----------------


def verb_matches(rule: PolicyRule, verb: str) -> bool:
    return VERB_ALL in rule.verbs or verb in rule.verbs


def api_group_matches(rule: PolicyRule, api_group: str) -> bool:
    return API_GROUP_ALL in rule.api_groups or api_group in rule.api_groups


def resource_matches(rule: PolicyRule, resource: str, subresource: str) -> bool:
    """Upstream ResourceMatches: ``*``, the exact ``resource[/subresource]``, or ``*/subresource``.

    There is deliberately no ``resource/*`` form: upstream never implemented one, so a rule
    naming ``pods/*`` only matches a (non-existent) subresource literally called ``*``. A
    simulator that honoured it would let tests pass that a real cluster fails.
    """
    combined = f"{resource}/{subresource}" if subresource else resource
    for rule_resource in rule.resources:
        if rule_resource in (RESOURCE_ALL, combined):
            return True
        # "*/log" grants the log subresource of every resource in the rule's groups, but never
        # the parent resources themselves (a request without a subresource skips this form).
        if subresource and rule_resource == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: PolicyRule, name: str) -> bool:
    """An empty resourceNames list means every name; otherwise the request must name one of them.

    A request without a name (list, watch, create, deletecollection) therefore never matches a
    rule with resourceNames: the name is unknown when the request is authorized.
    """
    return not rule.resource_names or name in rule.resource_names


def non_resource_url_matches(rule: PolicyRule, path: str) -> bool:
    for rule_url in rule.non_resource_urls:
        if rule_url in (NON_RESOURCE_ALL, path):
            return True
        # Only a trailing "*" is a wildcard, and it is a plain prefix match ("/healthz/*" does
        # not match "/healthz", "/api*" matches "/apis").
        if rule_url.endswith("*") and path.startswith(rule_url.rstrip("*")):
            return True
    return False


def rule_allows_resource(
    rule: PolicyRule, *, verb: str, api_group: str, resource: str, subresource: str, name: str
) -> bool:
    return (
        verb_matches(rule, verb)
        and api_group_matches(rule, api_group)
        and resource_matches(rule, resource, subresource)
        and resource_name_matches(rule, name)
    )


def rule_allows_non_resource(rule: PolicyRule, *, verb: str, path: str) -> bool:
    return verb_matches(rule, verb) and non_resource_url_matches(rule, path)


# --- escalation: do held rules cover requested rules (policy_comparator.go Covers) ---------


def covers(
    owner_rules: Sequence[PolicyRule], requested_rules: Iterable[PolicyRule]
) -> tuple[bool, list[PolicyRule]]:
    """Whether ``owner_rules`` cover all of ``requested_rules``, and the atoms they do not cover.

    Each requested rule is broken down to atomic (group, resource, verb[, name]) and
    (nonResourceURL, verb) tuples. An atomic rule is either wholly covered by a single owner
    rule or not at all, so checking them one by one is exact.
    """
    uncovered = [
        atom
        for requested in requested_rules
        for atom in breakdown_rule(requested)
        if not any(rule_covers(owner, atom) for owner in owner_rules)
    ]
    return not uncovered, uncovered


def breakdown_rule(rule: PolicyRule) -> list[PolicyRule]:
    atoms: list[PolicyRule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    atoms.extend(
                        PolicyRule((verb,), (group,), (resource,), (name,))
                        for name in rule.resource_names
                    )
                else:
                    atoms.append(PolicyRule((verb,), (group,), (resource,)))
    # Non-resource URLs combine with verbs only (groups and resources do not apply to them).
    for url in rule.non_resource_urls:
        for verb in rule.verbs:
            atoms.append(PolicyRule(verbs=(verb,), non_resource_urls=(url,)))
    return atoms


def rule_covers(owner: PolicyRule, atom: PolicyRule) -> bool:
    """Upstream ruleCovers. Note the comparison is literal: requesting verb ``*`` needs a held
    ``*``; holding every named verb is not enough, because ``*`` also grants future verbs."""
    verbs_ok = VERB_ALL in owner.verbs or _has_all(owner.verbs, atom.verbs)
    groups_ok = API_GROUP_ALL in owner.api_groups or _has_all(owner.api_groups, atom.api_groups)
    resources_ok = _resources_cover_all(owner.resources, atom.resources)
    urls_ok = all(
        any(_non_resource_url_covers(held, url) for held in owner.non_resource_urls)
        for url in atom.non_resource_urls
    )
    if not atom.resource_names:
        # Granting "every name" needs holding "every name": a name-restricted owner rule
        # cannot cover it.
        names_ok = not owner.resource_names
    else:
        names_ok = not owner.resource_names or _has_all(owner.resource_names, atom.resource_names)
    return verbs_ok and groups_ok and resources_ok and urls_ok and names_ok


def _has_all(held: Sequence[str], wanted: Sequence[str]) -> bool:
    return set(wanted) <= set(held)


def _resources_cover_all(held: Sequence[str], wanted: Sequence[str]) -> bool:
    if RESOURCE_ALL in held or _has_all(held, wanted):
        return True
    for resource in wanted:
        if resource in held:
            continue
        if "/" not in resource:
            return False
        # A held "*/log" covers a requested "pods/log" (and a requested "*/log" exactly).
        _, subresource = resource.split("/", 1)
        if f"*/{subresource}" not in held:
            return False
    return True


def _non_resource_url_covers(held: str, wanted: str) -> bool:
    if held == wanted:
        return True
    return held.endswith("*") and wanted.startswith(held.rstrip("*"))


def compact_rules(rules: Sequence[PolicyRule]) -> list[PolicyRule]:
    """Upstream CompactRules: merge atoms that differ only by verb, for a readable error."""
    compacted: list[PolicyRule] = []
    simple: dict[tuple[str, str], list[str]] = {}
    for rule in rules:
        is_simple = (
            not rule.resource_names
            and not rule.non_resource_urls
            and len(rule.api_groups) == 1
            and len(rule.resources) == 1
        )
        if is_simple:
            simple.setdefault((rule.api_groups[0], rule.resources[0]), []).extend(rule.verbs)
        else:
            compacted.append(rule)
    compacted.extend(
        PolicyRule(verbs=tuple(verbs), api_groups=(group,), resources=(resource,))
        for (group, resource), verbs in simple.items()
    )
    return compacted
