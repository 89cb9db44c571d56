"""FastAPI dependencies: the authenticated principal of a request, and the admin check.

Rate limiting is not here: `app.limits.enforce_rate_limit` depends on the principal and is
added to the routers that authenticate (`app.main`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.policies import PolicyEngine
from app.auth.principals import Principal
from app.errors import ForbiddenError, Unauthorized
from app.services import ServicesDep

# Only documents the scheme in OpenAPI (the "Authorize" button in /docs); parsing and every
# error response stay ours so all failures are problem+json with WWW-Authenticate.
bearer_scheme = HTTPBearer(
    auto_error=False, description="An API key (`sg_...`) or a CI OIDC ID token"
)


def _bearer_credential(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized(
            "authentication required: send 'Authorization: Bearer <API key or OIDC ID token>'"
        )
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        # Never quote the header back: it is the secret.
        raise Unauthorized(
            "the Authorization header must use the Bearer scheme", error="invalid_request"
        )
    return credential


async def current_principal(
    request: Request,
    services: ServicesDep,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Principal:
    """The caller, or a 401 problem. Also stored on `request.state.principal` for audit."""
    principal = await services.authenticator.authenticate(_bearer_credential(request))
    request.state.principal = principal
    return principal


async def current_admin(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if not principal.is_admin:
        raise ForbiddenError("this operation requires an admin principal")
    return principal


async def get_policy_engine(services: ServicesDep) -> PolicyEngine:
    return services.policies


PrincipalDep = Annotated[Principal, Depends(current_principal)]
AdminDep = Annotated[Principal, Depends(current_admin)]
PolicyEngineDep = Annotated[PolicyEngine, Depends(get_policy_engine)]
