"""Who may see and use a grant.

A principal sees only the grants it requested (anything else is `GrantNotFound`, so ids do not
leak); admins see and may revoke every grant. Credentials and renewals belong to the requester
alone: an admin gets 403 for someone else's grant, never a kubeconfig.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db.models import Grant, GrantStatus
from app.grants import repository
from app.grants.errors import CredentialsForbidden, GrantNotFound
from app.grants.ids import is_grant_id


async def visible_grant(session: AsyncSession, principal: Principal, grant_id: str) -> Grant:
    grant = await repository.get_grant(session, grant_id) if is_grant_id(grant_id) else None
    if grant is None or not (principal.is_admin or grant.requester == principal.id):
        raise GrantNotFound(grant_id)
    return grant


async def own_grant(session: AsyncSession, principal: Principal, grant_id: str) -> Grant:
    grant = await visible_grant(session, principal, grant_id)
    if grant.requester != principal.id:
        # Only admins get here (others were told 404): they may end a grant, not use it.
        raise CredentialsForbidden(
            "only the principal that requested a grant may fetch its kubeconfig or renew it"
        )
    return grant


def effective_status(grant: Grant, now: datetime) -> GrantStatus:
    # An active grant past its expiry is as good as expired; the reaper is about to end it.
    if grant.status is GrantStatus.ACTIVE and grant.expires_at <= now:
        return GrantStatus.EXPIRED
    return grant.status
