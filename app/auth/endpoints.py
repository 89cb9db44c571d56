"""`GET /v1/whoami`: the caller's identity and the policies that apply to it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.auth.dependencies import PolicyEngineDep, PrincipalDep
from app.settings_sections import PolicyConfig

router = APIRouter(prefix="/v1", tags=["auth"])


class PolicySummary(BaseModel):
    """What a policy lets the caller do. Subjects are left out: they name other principals."""

    name: str
    clusters: list[str]
    namespaces: list[str]
    scanners: list[str]
    max_ttl_seconds: int
    max_pods: int
    max_lifetime_seconds: int
    claims: dict[str, list[str]] | None = Field(
        default=None, description="OIDC token claims the policy also requires (omitted if none)"
    )
    allow_pods_with: list[str] = Field(
        default_factory=list,
        description="What exec/debug grants' pods may expose (a mounted ServiceAccount token, "
        "Secrets and ConfigMaps as volumes or env); pods exposing anything else are refused.",
    )

    @classmethod
    def of(cls, policy: PolicyConfig) -> PolicySummary:
        return cls(
            name=policy.name,
            clusters=list(policy.clusters),
            namespaces=list(policy.namespaces),
            scanners=list(policy.scanners),
            max_ttl_seconds=policy.max_ttl_seconds,
            max_pods=policy.max_pods,
            max_lifetime_seconds=policy.lifetime_cap_seconds,
            claims={k: list(v) for k, v in policy.claims.items()} or None,
            allow_pods_with=list(policy.allow_pods_with),
        )


class WhoAmI(BaseModel):
    principal: str
    kind: str
    is_admin: bool
    # The caller's own verified token claims, so a CI author can see what policies' `claims:`
    # are matched against. Omitted for API keys.
    claims: dict[str, Any] | None = None
    policies: list[PolicySummary]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "principal": "apikey:ci-payments",
                    "kind": "apikey",
                    "is_admin": False,
                    "policies": [
                        {
                            "name": "payments-ci",
                            "clusters": ["default"],
                            "namespaces": ["payments", "payments-*"],
                            "scanners": ["exec", "debug"],
                            "max_ttl_seconds": 3600,
                            "max_pods": 20,
                            "max_lifetime_seconds": 3600,
                        }
                    ],
                }
            ]
        }
    )


@router.get(
    "/whoami",
    response_model=WhoAmI,
    response_model_exclude_none=True,
    summary="The authenticated caller",
    response_description="The caller's principal and the policies that apply to it.",
)
async def whoami(principal: PrincipalDep, policies: PolicyEngineDep) -> WhoAmI:
    """Who the bearer credential authenticates as (`apikey:NAME` or `oidc:ISSUER#SUBJECT`),
    whether it is an admin, and what each applicable policy allows: useful to debug a 403."""
    return WhoAmI(
        principal=principal.id,
        kind=principal.kind,
        is_admin=principal.is_admin,
        claims=dict(principal.claims) if principal.kind == "oidc" else None,
        policies=[PolicySummary.of(p) for p in policies.policies_for(principal)],
    )
