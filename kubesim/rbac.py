"""kubesim's RBAC authorizer: Kubernetes' RBAC evaluated over the simulator's stored objects.

This module owns *who may do what*: request authorization (``Authorizer.authorize``), the rule
listing behind SelfSubjectRulesReview (``rules_for``), and privilege-escalation prevention for
writes of Roles, ClusterRoles and bindings (``check_role_escalation``, ``check_binding``). It
mirrors kube-apiserver's ``plugin/pkg/auth/authorizer/rbac`` and ``pkg/registry/rbac``; the
rule-level algorithms live in ``kubesim.rbac_rules``.

What stays with the server: turning an HTTP request into ``RequestAttributes`` (verb from the
method, ``namespace`` = the name when getting a Namespace, as kube-apiserver's RequestInfo does),
authenticating users and adding the groups every user gets (``system:authenticated``, and for
ServiceAccounts ``system:serviceaccounts`` and ``system:serviceaccounts:<ns>``), validating
objects (a Role may not carry nonResourceURLs), and the bootstrap roles of
``kubesim.rbac_bootstrap`` (the server's).

Objects are the plain dicts the API returns; nothing here mutates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kubesim.rbac_messages import (
    NOT_FOUND_PREFIX,
    RBAC_GROUP,
    compact_string,
    denial_detail,
    forbidden_message,
    go_quote,
    go_quote_list,
)
from kubesim.rbac_rules import (
    PolicyRule,
    compact_rules,
    covers,
    parse_rules,
    rule_allows_non_resource,
    rule_allows_resource,
)

# Members bypass RBAC entirely (kube-apiserver's privileged-group authorizer runs before RBAC and
# the RBAC registry skips escalation checks for them: loopback clients use this group).
SYSTEM_MASTERS = "system:masters"
SERVICE_ACCOUNT_USER_PREFIX = "system:serviceaccount:"

__all__ = [
    "NOT_FOUND_PREFIX",
    "RBAC_GROUP",
    "SYSTEM_MASTERS",
    "Authorizer",
    "Decision",
    "RbacObjects",
    "RequestAttributes",
    "UserInfo",
    "denial_detail",
    "forbidden_message",
    "service_account_username",
]


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...]
    uid: str = ""


@dataclass(frozen=True)
class RequestAttributes:
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class RbacObjects(Protocol):
    """Read access to the stored RBAC objects (dicts shaped as the API serves them)."""

    def cluster_roles(self) -> Iterable[Mapping[str, Any]]: ...
    def cluster_role_bindings(self) -> Iterable[Mapping[str, Any]]: ...
    def roles(self, namespace: str) -> Iterable[Mapping[str, Any]]: ...
    def role_bindings(self, namespace: str) -> Iterable[Mapping[str, Any]]: ...
    def get_role(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...
    def get_cluster_role(self, name: str) -> Mapping[str, Any] | None: ...


# What setting an aggregationRule requires (upstream rbac registry `fullAuthority`).
_FULL_AUTHORITY: Final = (
    {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
    {"verbs": ["*"], "nonResourceURLs": ["*"]},
)
_AGGREGATION_DENIED: Final = "must have cluster-admin privileges to use the aggregationRule"


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}"


@dataclass(frozen=True)
class _Grant:
    """One rule reaching the user, and through which binding (for the allow reason)."""

    rule: PolicyRule
    binding: Mapping[str, Any]
    subject: Mapping[str, Any]
    binding_namespace: str  # "" for a ClusterRoleBinding

    def describe(self) -> str:
        # Upstream's clusterRoleBindingDescriber / roleBindingDescriber wording, so that
        # SubjectAccessReview reasons read like a real cluster's.
        role_ref = _role_ref(self.binding)
        name = _meta_name(self.binding)
        subject = _describe_subject(self.subject, self.binding_namespace)
        role = f"{role_ref.get('kind', '')} {go_quote(str(role_ref.get('name', '')))}"
        if self.binding_namespace:
            binding = f"RoleBinding {go_quote(f'{name}/{self.binding_namespace}')}"
        else:
            binding = f"ClusterRoleBinding {go_quote(name)}"
        return f"{binding} of {role} to {subject}"


class Authorizer:
    """Kubernetes RBAC over an ``RbacObjects`` store. Stateless: every call reads the store,
    so a Role written by one request governs the next one."""

    def __init__(self, objects: RbacObjects) -> None:
        self._objects = objects

    # --- authorization ---------------------------------------------------------------------

    def authorize(self, user: UserInfo, attrs: RequestAttributes) -> Decision:
        if SYSTEM_MASTERS in user.groups:
            # kube-apiserver's privileged-group authorizer answers with an empty reason.
            return Decision(True)
        # Non-resource requests (/metrics, /healthz) have no namespace, so only
        # ClusterRoleBindings are consulted: nonResourceURLs reach a user through nothing else.
        namespace = attrs.namespace if attrs.resource_request else ""
        errors: list[str] = []
        for grant in self._grants(user, namespace, errors):
            if _rule_allows(grant.rule, attrs):
                return Decision(True, f"RBAC: allowed by {grant.describe()}")
        # As upstream: a plain deny has no reason; bindings whose role is missing surface as
        # "RBAC: ..." so that the 403 says why an expected permission is absent.
        return Decision(False, f"RBAC: {_aggregate(errors)}" if errors else "")

    def rules_for(
        self, user: UserInfo, namespace: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(resourceRules, nonResourceRules) for SelfSubjectRulesReview in ``namespace``.

        As upstream, a rule carrying both resources and nonResourceURLs appears in both lists,
        and each rule keeps its own verbs; nothing is merged or deduplicated.
        """
        resource_rules: list[dict[str, Any]] = []
        non_resource_rules: list[dict[str, Any]] = []
        for rule in self._held_rules(user, namespace):
            if rule.resources:
                resource_rules.append(
                    PolicyRule(
                        verbs=rule.verbs,
                        api_groups=rule.api_groups,
                        resources=rule.resources,
                        resource_names=rule.resource_names,
                    ).to_dict()
                )
            if rule.non_resource_urls:
                non_resource_rules.append(
                    PolicyRule(verbs=rule.verbs, non_resource_urls=rule.non_resource_urls).to_dict()
                )
        return resource_rules, non_resource_rules

    # --- escalation prevention -------------------------------------------------------------

    def check_role_escalation(
        self,
        user: UserInfo,
        namespace: str | None,
        rules: Sequence[Mapping[str, Any]],
        *,
        name: str = "",
        aggregation_rule: bool = False,
    ) -> Decision:
        """May ``user`` write a Role in ``namespace`` (a ClusterRole when None) with ``rules``?

        ``name`` is the role's name on update. Upstream authorizes ``escalate`` with the
        request's name, which a create (POST to the collection) does not have, so an
        ``escalate`` restricted by resourceNames allows updating those roles but never
        creating them. The server passes ``name`` for updates only.

        ``aggregation_rule``: the ClusterRole (or the one it replaces) has an aggregationRule.
        Without ``escalate`` that needs every permission (``*`` on ``*.*`` and on every
        non-resource URL), since the rule can gather any role's rules (upstream clusterrole
        policybased storage).
        """
        if SYSTEM_MASTERS in user.groups:
            return Decision(True)
        escalate = RequestAttributes(
            verb="escalate",
            api_group=RBAC_GROUP,
            resource="roles" if namespace is not None else "clusterroles",
            name=name,
            namespace=namespace or "",
        )
        if self.authorize(user, escalate).allowed:
            return Decision(True, "escalate")
        decision = self._confirm_no_escalation(user, namespace or "", parse_rules(rules))
        if not (decision.allowed and aggregation_rule):
            return decision
        if self._confirm_no_escalation(user, "", parse_rules(_FULL_AUTHORITY)).allowed:
            return decision
        return Decision(False, _AGGREGATION_DENIED)

    def check_binding(
        self, user: UserInfo, binding: Mapping[str, Any], namespace: str | None
    ) -> Decision:
        """May ``user`` write ``binding``: a RoleBinding in ``namespace``, or a ClusterRoleBinding?

        Either ``bind`` on the referenced role, checked in the binding's namespace (so ``bind``
        on a ClusterRole granted by a RoleBinding lets one delegate it in that namespace only),
        or the role must exist and the user must hold all of its rules where the binding
        grants them. A denied Decision whose reason starts with ``notfound:`` names the missing
        role as ``notfound:<kind>:<name>``: kube-apiserver answers that with 404 NotFound, not
        403 (see ``denial_detail`` for the message).
        """
        if SYSTEM_MASTERS in user.groups:
            return Decision(True)
        role_ref = _role_ref(binding)
        kind = str(role_ref.get("kind", ""))
        role_name = str(role_ref.get("name", ""))
        binding_namespace = namespace or ""
        if kind not in ("Role", "ClusterRole"):
            # Object validation rejects this first; refusing here keeps the check total.
            return Decision(False, f"unsupported role reference kind: {go_quote(kind)}")
        if kind == "Role" and namespace is None:
            return Decision(False, "a ClusterRoleBinding can only reference a ClusterRole")
        bind = RequestAttributes(
            verb="bind",
            api_group=str(role_ref.get("apiGroup") or RBAC_GROUP),
            resource="roles" if kind == "Role" else "clusterroles",
            name=role_name,
            namespace=binding_namespace,
        )
        if self.authorize(user, bind).allowed:
            return Decision(True, "bind")
        # Without bind the role is resolved now: a binding to a role that does not exist yet
        # cannot be checked, so it is refused (this is why scangate creates the Role first).
        if kind == "Role":
            role = self._objects.get_role(binding_namespace, role_name)
        else:
            role = self._objects.get_cluster_role(role_name)
        if role is None:
            return Decision(False, f"{NOT_FOUND_PREFIX}{kind}:{role_name}")
        return self._confirm_no_escalation(user, binding_namespace, parse_rules(role.get("rules")))

    def _confirm_no_escalation(
        self, user: UserInfo, namespace: str, requested: list[PolicyRule]
    ) -> Decision:
        # Upstream ConfirmNoEscalation: the user's rules in the target namespace (its
        # RoleBindings there plus every ClusterRoleBinding) must cover the requested rules.
        errors: list[str] = []
        held = [grant.rule for grant in self._grants(user, namespace, errors)]
        ok, missing = covers(held, requested)
        if ok:
            return Decision(True)
        descriptions = sorted({compact_string(rule) for rule in compact_rules(missing)})
        message = (
            f"user {go_quote(user.name)} (groups={go_quote_list(user.groups)}) is attempting "
            "to grant RBAC permissions not currently held:\n" + "\n".join(descriptions)
        )
        if errors:
            message += f"; resolution errors: [{_aggregate(errors)}]"
        return Decision(False, message)

    # --- rule resolution (upstream DefaultRuleResolver.VisitRulesFor) ----------------------

    def _held_rules(self, user: UserInfo, namespace: str) -> Iterator[PolicyRule]:
        errors: list[str] = []
        for grant in self._grants(user, namespace, errors):
            yield grant.rule

    def _grants(self, user: UserInfo, namespace: str, errors: list[str]) -> Iterator[_Grant]:
        """Every rule reaching ``user`` in ``namespace``, lazily, ClusterRoleBindings first.

        A binding whose role is missing contributes nothing and records an error instead: RBAC
        is purely additive, so the other bindings still count.
        """
        for binding in self._objects.cluster_role_bindings():
            subject = _matching_subject(user, binding, "")
            if subject is None:
                continue
            rules = self._role_ref_rules(binding, "", errors)
            for rule in rules:
                yield _Grant(rule, binding, subject, "")
        # A RoleBinding only ever grants inside its own namespace, whatever role it references.
        if not namespace:
            return
        for binding in self._objects.role_bindings(namespace):
            subject = _matching_subject(user, binding, namespace)
            if subject is None:
                continue
            for rule in self._role_ref_rules(binding, namespace, errors):
                yield _Grant(rule, binding, subject, namespace)

    def _role_ref_rules(
        self, binding: Mapping[str, Any], binding_namespace: str, errors: list[str]
    ) -> list[PolicyRule]:
        role_ref = _role_ref(binding)
        kind = role_ref.get("kind")
        name = str(role_ref.get("name", ""))
        if kind == "Role":
            # A RoleBinding's Role is always looked up in the binding's namespace (a
            # ClusterRoleBinding has none, so a Role reference there resolves to nothing).
            role = self._objects.get_role(binding_namespace, name) if binding_namespace else None
            missing = f"role.{RBAC_GROUP} {go_quote(name)} not found"
        elif kind == "ClusterRole":
            role = self._objects.get_cluster_role(name)
            missing = f"clusterrole.{RBAC_GROUP} {go_quote(name)} not found"
        else:
            errors.append(f"unsupported role reference kind: {go_quote(str(kind))}")
            return []
        if role is None:
            errors.append(missing)
            return []
        return parse_rules(role.get("rules"))


def _rule_allows(rule: PolicyRule, attrs: RequestAttributes) -> bool:
    if attrs.resource_request:
        return rule_allows_resource(
            rule,
            verb=attrs.verb,
            api_group=attrs.api_group,
            resource=attrs.resource,
            subresource=attrs.subresource,
            name=attrs.name,
        )
    return rule_allows_non_resource(rule, verb=attrs.verb, path=attrs.path)


def _matching_subject(
    user: UserInfo, binding: Mapping[str, Any], binding_namespace: str
) -> Mapping[str, Any] | None:
    for subject in binding.get("subjects") or ():
        if isinstance(subject, Mapping) and _subject_applies(user, subject, binding_namespace):
            return subject
    return None


def _subject_applies(user: UserInfo, subject: Mapping[str, Any], binding_namespace: str) -> bool:
    kind = subject.get("kind")
    name = str(subject.get("name", ""))
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        # A ServiceAccount subject without a namespace means "in the binding's namespace";
        # in a ClusterRoleBinding there is none, so such a subject matches nobody.
        sa_namespace = str(subject.get("namespace") or binding_namespace)
        if not sa_namespace:
            return False
        return user.name == service_account_username(sa_namespace, name)
    return False


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind = str(subject.get("kind", ""))
    name = str(subject.get("name", ""))
    if kind == "ServiceAccount":
        sa_namespace = str(subject.get("namespace") or binding_namespace)
        return f"{kind} {go_quote(f'{name}/{sa_namespace}')}"
    return f"{kind} {go_quote(name)}"


def _role_ref(binding: Mapping[str, Any]) -> Mapping[str, Any]:
    role_ref = binding.get("roleRef")
    return role_ref if isinstance(role_ref, Mapping) else {}


def _meta_name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, Mapping) else ""


def _aggregate(errors: list[str]) -> str:
    # utilerrors.NewAggregate: one error prints bare, several as "[a, b]" without duplicates.
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
