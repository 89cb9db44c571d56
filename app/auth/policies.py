"""Policies: who may request access to which clusters, namespaces and scanner profiles.

Deny by default: a request is allowed only by a policy whose subjects match the principal and
whose clusters, namespaces and scanners all match the request; the first such policy (in
configuration order) governs the grant's limits (`max_ttl_seconds`, `max_pods`,
`max_lifetime_seconds`). `denied_namespaces` and every cluster's grants namespace are refused
before any policy is consulted, so no policy (not even `namespaces: ["*"]`) can grant them.

Globs: `*` matches any run of characters (including none) and nothing else is special, so
`oidc:https://token.actions.githubusercontent.com#repo:acme/payments:*` means exactly what it says.

Claims: a policy may also require OIDC token claims (`claims: {repository: acme/payments,
ref: [refs/heads/main, "refs/tags/v*"]}`). Every named claim must be present and match one of its
globs; a list-valued claim matches when any element does; booleans and numbers are compared as
the text JSON gives them (`true`, `42`). API-key principals carry no claims, so a policy with
`claims` never applies to them. The subject is matched first, so a claim can only narrow it: the
`sub` of a GitHub token already encodes repository and ref, but `environment`, `ref_protected` or
`job_workflow_ref` are often what an operator really wants to pin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.auth.principals import Principal
from app.errors import ForbiddenError
from app.settings import Settings
from app.settings_sections import PolicyConfig


class PolicyDenied(ForbiddenError):
    title = "Denied by Policy"
    type_slug = "policy-denied"


class Glob:
    """A pattern where only `*` is special."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))

    def matches(self, value: str) -> bool:
        return self._regex.fullmatch(value) is not None


def _any_match(globs: Iterable[Glob], value: str) -> bool:
    return any(glob.matches(value) for glob in globs)


def _claim_texts(value: Any) -> list[str]:
    """The strings a claim value is matched as; none for objects and nulls, which no policy
    pattern can sensibly describe."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float):
        return [str(value)]
    if isinstance(value, list):
        return [text for item in value if not isinstance(item, list) for text in _claim_texts(item)]
    return []


class _CompiledPolicy:
    def __init__(self, policy: PolicyConfig) -> None:
        self.policy = policy
        self.subjects = tuple(Glob(s) for s in policy.subjects)
        self.namespaces = tuple(Glob(n) for n in policy.namespaces)
        self.claims = {name: tuple(Glob(p) for p in pats) for name, pats in policy.claims.items()}
        approval = policy.approval
        self.approvers = tuple(Glob(a) for a in approval.approvers) if approval else ()

    def applies_to(self, principal: Principal) -> bool:
        return _any_match(self.subjects, principal.id) and self.claims_match(principal.claims)

    def claims_match(self, claims: Mapping[str, Any]) -> bool:
        return all(
            name in claims and any(_any_match(globs, text) for text in _claim_texts(claims[name]))
            for name, globs in self.claims.items()
        )

    def allows_cluster(self, cluster: str) -> bool:
        return "*" in self.policy.clusters or cluster in self.policy.clusters

    def allows_namespace(self, namespace: str) -> bool:
        return _any_match(self.namespaces, namespace)

    def allows_scanner(self, scanner: str) -> bool:
        return scanner in self.policy.scanners


class PolicyEngine:
    """Evaluates the configured policies (immutable; built once per app)."""

    def __init__(self, settings: Settings) -> None:
        self._policies = tuple(_CompiledPolicy(p) for p in settings.policies)
        self._by_name = {p.name: p for p in settings.policies}
        self._never_grantable = settings.never_grantable_namespaces

    def get(self, name: str) -> PolicyConfig | None:
        return self._by_name.get(name)

    def matched_claims(self, principal: Principal, policy: PolicyConfig) -> dict[str, Any]:
        """The principal's values of the claims `policy` required: what the audit trail
        records as the reason this OIDC principal was allowed (empty for claim-less policies)."""
        return {name: principal.claims.get(name) for name in policy.claims}

    def approves(self, principal: Principal, policy_name: str) -> bool:
        """Whether `principal` is one of the approvers of the policy named `policy_name` (as
        configured now; False when it has no `approval`)."""
        return any(
            c.policy.name == policy_name and _any_match(c.approvers, principal.id)
            for c in self._policies
        )

    def approved_by(self, principal: Principal) -> list[str]:
        """The names of the policies whose requests `principal` may approve or deny."""
        return [c.policy.name for c in self._policies if _any_match(c.approvers, principal.id)]

    def policies_for(self, principal: Principal) -> list[PolicyConfig]:
        """Every policy whose subjects match `principal`, in configuration order."""
        return [c.policy for c in self._applicable(principal)]

    def _applicable(self, principal: Principal) -> Sequence[_CompiledPolicy]:
        return [c for c in self._policies if c.applies_to(principal)]

    def _no_policy_detail(self, principal: Principal) -> str:
        # When the subject matched but claims did not, say which claims (names only, never
        # the patterns): a CI author can then see what their token lacks.
        names = sorted(
            {
                name
                for c in self._policies
                if _any_match(c.subjects, principal.id) and not c.claims_match(principal.claims)
                for name in c.claims
            }
        )
        if not names:
            return f"no policy applies to {principal.id}"
        return (
            f"no policy applies to {principal.id}: the policies for this subject also require "
            f"token claims that do not match ({', '.join(names)})"
        )

    def authorize(
        self, principal: Principal, *, cluster: str, namespace: str, scanner: str
    ) -> PolicyConfig:
        """The first policy allowing `principal` to use `scanner` on `namespace` in `cluster`.

        Raises `PolicyDenied` naming the first dimension nothing allows (namespace before
        scanner), so callers learn what to ask for without seeing other principals' policies.
        """

        def deny(what: str, detail: str) -> PolicyDenied:
            return PolicyDenied(
                detail, denied=what, cluster=cluster, namespace=namespace, scanner=scanner
            )

        if namespace in self._never_grantable:
            raise deny(
                "namespace",
                f"namespace {namespace!r} is never grantable (system or grants namespace)",
            )
        candidates = self._applicable(principal)
        if not candidates:
            raise deny("principal", self._no_policy_detail(principal))
        candidates = [c for c in candidates if c.allows_cluster(cluster)]
        if not candidates:
            raise deny("cluster", f"no policy allows {principal.id} to use cluster {cluster!r}")
        candidates = [c for c in candidates if c.allows_namespace(namespace)]
        if not candidates:
            raise deny(
                "namespace",
                f"no policy allows {principal.id} to access namespace {namespace!r} "
                f"on cluster {cluster!r}",
            )
        candidates = [c for c in candidates if c.allows_scanner(scanner)]
        if not candidates:
            raise deny(
                "scanner",
                f"no policy allows {principal.id} to use scanner {scanner!r} in namespace "
                f"{namespace!r} on cluster {cluster!r}",
            )
        return candidates[0].policy
