"""The texts kubesim's RBAC shows: kube-apiserver's 403 messages and their building blocks.

Clients and people match on these strings (kubectl prints them verbatim, scangate maps them to
its own errors), so they follow upstream's wording and Go's quoting exactly:
``responsewriters.forbiddenMessage`` + ``errors.NewForbidden`` for denied requests,
``rbacv1helpers.CompactString`` for the permissions an escalation attempt lacks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from kubesim.rbac_rules import PolicyRule

if TYPE_CHECKING:
    from kubesim.rbac import RequestAttributes, UserInfo

RBAC_GROUP = "rbac.authorization.k8s.io"
NOT_FOUND_PREFIX = "notfound:"


def forbidden_message(user: UserInfo, attrs: RequestAttributes, reason: str = "") -> str:
    """The message of kube-apiserver's 403 Status for a denied request.

    Upstream builds it in two steps: ``forbiddenMessage`` (the "User ... cannot ..." sentence,
    naming ``resource/subresource``) wrapped by ``NewForbidden(groupResource, name)``, whose
    prefix names the bare resource qualified by its group and the object name when there is one.
    ``reason`` (a denied Decision's reason, if any) is appended after a colon, as upstream does.
    """
    user_q = go_quote(user.name)
    if not attrs.resource_request:
        detail = f"User {user_q} cannot {attrs.verb} path {go_quote(attrs.path)}"
        prefix = "forbidden"
    else:
        resource = attrs.resource
        if attrs.subresource:
            resource = f"{resource}/{attrs.subresource}"
        scope = (
            f"in the namespace {go_quote(attrs.namespace)}"
            if attrs.namespace
            else "at the cluster scope"
        )
        detail = (
            f"User {user_q} cannot {attrs.verb} resource {go_quote(resource)} "
            f"in API group {go_quote(attrs.api_group)} {scope}"
        )
        prefix = _qualified_resource_prefix(attrs)
    if reason:
        detail = f"{detail}: {reason}"
    return f"{prefix}: {detail}"


def denial_detail(reason: str) -> str:
    """The message for a refused Role or binding write, from the denied Decision's reason.

    Escalation refusals are 403s reading ``<resource> "<name>" is forbidden: <this>``. A binding
    to a missing role (``notfound:`` reason) is different: the rolebinding storage returns the
    role lookup's error unwrapped, so the client gets a **404 NotFound** whose whole message is
    this text, e.g. ``roles.rbac.authorization.k8s.io "scangate-x" not found`` (Status details:
    group ``rbac.authorization.k8s.io``, kind ``roles``, name ``scangate-x``).
    """
    if reason.startswith(NOT_FOUND_PREFIX):
        kind, _, name = reason.removeprefix(NOT_FOUND_PREFIX).partition(":")
        resource = "roles" if kind == "Role" else "clusterroles"
        return f"{resource}.{RBAC_GROUP} {go_quote(name)} not found"
    return reason


def _qualified_resource_prefix(attrs: RequestAttributes) -> str:
    resource = attrs.resource
    if attrs.api_group:
        resource = f"{resource}.{attrs.api_group}"
    if not resource:
        return "forbidden"
    if attrs.name:
        return f"{resource} {go_quote(attrs.name)} is forbidden"
    return f"{resource} is forbidden"


def compact_string(rule: PolicyRule) -> str:
    """Upstream CompactString, e.g. ``{APIGroups:[""], Resources:["pods"], Verbs:["get"]}``."""
    parts: list[str] = []
    for label, values in (
        ("APIGroups", rule.api_groups),
        ("Resources", rule.resources),
        ("NonResourceURLs", rule.non_resource_urls),
        ("ResourceNames", rule.resource_names),
        ("Verbs", rule.verbs),
    ):
        if values:
            parts.append(f"{label}:{go_quote_list(values)}")
    return "{" + ", ".join(parts) + "}"


def go_quote(value: str) -> str:
    """Go's ``%q`` for a string. JSON string escaping agrees with it for every printable string,
    which is all that Kubernetes names, groups and paths can contain."""
    return json.dumps(value, ensure_ascii=False)


def go_quote_list(values: Iterable[str]) -> str:
    """Go's ``%q`` for a []string: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(value) for value in values) + "]"
