"""Who may see and use a grant.

A principal sees only the grants it requested (anything else is `GrantNotFound`, so ids do not
leak); admins see and may revoke every grant. Credentials and renewals belong to the requester
alone: an admin gets 403 for someone else's grant, never a kubeconfig.

Approvers (a policy's `approval.approvers`) also see the grants of that policy that needed
approval (`viewable_grant`: one grant and its events; listings: `approver_policies`), so they
can decide on them and follow what became of them. That is all: they cannot revoke, renew or
fetch credentials (`visible_grant` and `own_grant` do not know them: 404, as for a stranger).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import PolicyEngine, Principal
from app.db.models import Grant, GrantStatus
from app.grants import approval_queries, repository
from app.grants.errors import CredentialsForbidden, GrantNotFound
from app.grants.ids import is_grant_id


async def visible_grant(session: AsyncSession, principal: Principal, grant_id: str) -> Grant:
    """A grant `principal` requested (admins: any grant), with its decisions loaded."""
    grant = await repository.get_grant(session, grant_id) if is_grant_id(grant_id) else None
    if grant is None or not (principal.is_admin or grant.requester == principal.id):
        raise GrantNotFound(grant_id)
    await approval_queries.load_decisions(session, [grant])
    return grant


async def viewable_grant(
    session: AsyncSession, principal: Principal, grant_id: str, policies: PolicyEngine
) -> Grant:
    """`visible_grant`, or a grant that needed approval under a policy `principal` approves
    for (read only)."""
    grant = await repository.get_grant(session, grant_id) if is_grant_id(grant_id) else None
    if grant is None or not (
        principal.is_admin
        or grant.requester == principal.id
        or (grant.approvals_required is not None and policies.approves(principal, grant.policy))
    ):
        raise GrantNotFound(grant_id)
    await approval_queries.load_decisions(session, [grant])
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
    # Likewise a request past its approval deadline: no approval can count any more.
    deadline = grant.approval_deadline
    if grant.status is GrantStatus.PENDING_APPROVAL and deadline is not None and deadline <= now:
        return GrantStatus.APPROVAL_EXPIRED
    return grant.status
