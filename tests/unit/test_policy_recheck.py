"""The reaper's policy re-check works without a caller: each active grant's principal is rebuilt
from its requester and the OIDC claims recorded when it was granted, and judged by today's
policies."""

from __future__ import annotations

from typing import Any

from app.auth import PolicyEngine
from app.grants.policy_recheck import GrantUse, disallowed_grants
from app.settings import Settings

GITHUB = "https://token.actions.githubusercontent.com"
SUBJECT = f"oidc:{GITHUB}#repo:acme/payments:ref:refs/heads/main"


def policies(*entries: dict[str, Any]) -> PolicyEngine:
    base = {"namespaces": ["payments"], "scanners": ["exec"]}
    return PolicyEngine(
        Settings(
            clusters=[{"name": "default"}],
            policies=[{"name": f"p{i}", **base, **e} for i, e in enumerate(entries)],
        )
    )


def use(grant_id: str, requester: str, scanner: str = "exec") -> GrantUse:
    return GrantUse(grant_id, requester, "default", "payments", scanner)


def test_grants_are_judged_by_todays_policies_with_their_recorded_claims() -> None:
    today = policies(
        {"subjects": ["apikey:ci"]},
        {"subjects": [f"oidc:{GITHUB}#repo:acme/*"], "claims": {"environment": "production"}},
    )
    why = disallowed_grants(
        today,
        [
            (use("a", "apikey:ci"), None),
            (use("b", "apikey:ci", scanner="debug"), None),
            (use("c", SUBJECT), {"environment": "production"}),
            (use("d", SUBJECT), {"environment": "staging"}),
            # Recorded under an older policy that required other claims: today's policy cannot
            # be shown to allow it, so it ends.
            (use("e", SUBJECT), {"repository": "acme/payments"}),
            (use("f", "apikey:gone"), None),
        ],
    )
    assert set(why) == {"b", "d", "e", "f"}
    assert why["b"] == (
        "grant 'b' is no longer allowed: no policy allows apikey:ci to use scanner 'debug' in "
        "namespace 'payments' on cluster 'default'"
    )
    assert why["f"] == "grant 'f' is no longer allowed: no policy applies to apikey:gone"
