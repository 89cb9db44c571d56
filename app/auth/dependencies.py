"""FastAPI dependencies: the authenticated principal of a request, and the admin check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.authenticator import Authenticator
from app.auth.policies import PolicyEngine
from app.auth.principals import Principal
from app.errors import ForbiddenError, Unauthorized
from app.limits.rate_limit import enforce_rate_limit

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
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Principal:
    """The caller, or a 401 problem (429 when it is over its rate limit). Also stored on
    `request.state.principal` for audit."""
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(_bearer_credential(request))
    request.state.principal = principal
    # After authentication: the principal is what is limited, and an unauthenticated flood
    # must not drain a real principal's bucket.
    enforce_rate_limit(request.app.state, principal.id)
    return principal


async def current_admin(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if not principal.is_admin:
        raise ForbiddenError("this operation requires an admin principal")
    return principal


async def get_policy_engine(request: Request) -> PolicyEngine:
    # `async` although it awaits nothing: FastAPI runs plain `def` dependencies in a worker
    # thread, a thread hop per request for an attribute lookup.
    engine: PolicyEngine = request.app.state.policies
    return engine


PrincipalDep = Annotated[Principal, Depends(current_principal)]
AdminDep = Annotated[Principal, Depends(current_admin)]
PolicyEngineDep = Annotated[PolicyEngine, Depends(get_policy_engine)]
