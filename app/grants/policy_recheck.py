"""Policy is checked on every use of a grant, not only when it is created.

A grant outlives the configuration it was granted under: a policy may be removed or narrowed
(a reload or a restart with new settings) while grants it allowed are still active. So:
- fetching a kubeconfig re-authorizes the caller for the grant's cluster, namespace and scanner
  (`recheck_grant`; renewals already authorize anew in `GrantLifecycle.renew_grant`), and a grant
  no policy allows any more gets a 403 naming why;
- once per configuration generation (at start and after each reload: `app/reload`), the
  reaper ends active grants no policy allows any more (`disallowed_grants`,
  `GrantEnder.revoke_disallowed`), with an audit event naming why.

At reaper time there is no caller and no token: the grant's principal is rebuilt from its
requester and the OIDC claims recorded when it was granted (the ones its policy required). A new
policy requiring claims that were not recorded cannot be shown to allow the grant, so the grant
ends: access must be provably allowed by today's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from app.auth import PolicyEngine, Principal
from app.auth.policies import PolicyDenied
from app.grants.errors import GrantNoLongerAllowed
from app.settings_sections import PolicyConfig

# The reason recorded on grants the reaper ends for this.
DISALLOWED_REASON: Final = "policy no longer allows this grant"


@dataclass(frozen=True)
class GrantUse:
    """What a policy decides on: who asked, for what."""

    id: str
    requester: str
    cluster: str
    namespace: str
    scanner: str


def recheck_grant(policies: PolicyEngine, principal: Principal, grant: GrantUse) -> PolicyConfig:
    """The first policy that still allows `principal` this grant's cluster, namespace and
    scanner; `GrantNoLongerAllowed` (403, naming why) when none does."""
    try:
        return policies.authorize(
            principal, cluster=grant.cluster, namespace=grant.namespace, scanner=grant.scanner
        )
    except PolicyDenied as exc:
        raise GrantNoLongerAllowed(
            f"grant {grant.id!r} is no longer allowed: {exc.detail}",
            denied=exc.extra.get("denied"),
        ) from None


def recorded_principal(requester: str, claims: dict[str, Any] | None) -> Principal:
    """The grant's principal as far as the database knows it: its id and recorded claims."""
    if requester.startswith("oidc:"):
        return Principal(id=requester, kind="oidc", claims=dict(claims or {}))
    return Principal(id=requester, kind="apikey")


def disallowed_grants(
    policies: PolicyEngine, grants: list[tuple[GrantUse, dict[str, Any] | None]]
) -> dict[str, str]:
    """`{grant id: why}` of the grants (with their recorded claims) no policy allows now."""
    why: dict[str, str] = {}
    for grant, claims in grants:
        try:
            recheck_grant(policies, recorded_principal(grant.requester, claims), grant)
        except GrantNoLongerAllowed as exc:
            why[grant.id] = exc.detail
    return why
