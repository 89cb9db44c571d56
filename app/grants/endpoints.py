"""HTTP routes `/v1/grants...`: parse, call the service, shape the response. Nothing else."""

from __future__ import annotations

import json
from typing import Annotated, Final, Literal

import yaml
from fastapi import APIRouter, Body, Depends, Path, Query, Response
from fastapi import status as http_status

from app.auth import PrincipalDep
from app.db.models import GrantStatus
from app.docs.openapi import problem_responses
from app.grants import examples
from app.grants.approvals import GrantApprovals
from app.grants.lifecycle import GrantLifecycle
from app.grants.schemas import (
    GrantApprove,
    GrantCreate,
    GrantDeny,
    GrantEventList,
    GrantEventOut,
    GrantOut,
    GrantPage,
    GrantRenew,
    GrantRevoke,
)
from app.grants.service import GrantService
from app.services import ServicesDep

router = APIRouter(prefix="/v1/grants", tags=["grants"])

# libyaml's emitter when PyYAML was built with it (its wheels are): the same output as the
# pure-Python SafeDumper, at a fraction of the CPU.
_YAML_DUMPER: Final = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# Credentials must not linger in proxies, browser caches or CI caches.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def get_grant_service(services: ServicesDep) -> GrantService:
    return services.grants


async def get_grant_lifecycle(services: ServicesDep) -> GrantLifecycle:
    return services.lifecycle


async def get_grant_approvals(services: ServicesDep) -> GrantApprovals:
    return services.approvals


ServiceDep = Annotated[GrantService, Depends(get_grant_service)]
LifecycleDep = Annotated[GrantLifecycle, Depends(get_grant_lifecycle)]
ApprovalsDep = Annotated[GrantApprovals, Depends(get_grant_approvals)]
GrantId = Annotated[
    str,
    Path(description="A grant id (26 lowercase characters).", examples=[examples.GRANT_ID]),
]


@router.post(
    "",
    status_code=http_status.HTTP_201_CREATED,
    response_model=GrantOut,
    summary="Request access to pods",
    response_description="The grant, `active`: its ServiceAccount, Role and RoleBinding exist. "
    "`Location` names it.",
    responses={
        202: {
            "model": GrantOut,
            "content": {"application/json": {"example": examples.PENDING_GRANT}},
            "description": "Accepted: the policy asks for approval. The grant is "
            "`pending_approval` (no cluster object yet); poll `GET /v1/grants/{grant_id}`. "
            "`Location` names it.",
        },
        **problem_responses(
            403,
            409,
            422,
            502,
            503,
            _403="No policy allows this principal this cluster, namespace or scanner.",
            _409="The principal already holds the policy's `max_active_grants` grants.",
        ),
    },
)
async def create_grant(
    body: Annotated[GrantCreate, Body(openapi_examples=examples.CREATE)],
    principal: PrincipalDep,
    lifecycle: LifecycleDep,
    response: Response,
) -> GrantOut:
    """Creates a ServiceAccount (in the grants namespace), a Role naming exactly the resolved
    pods in `resourceNames` with the scanner profile's rules, and a RoleBinding, then answers
    with the active grant. A failure at any step deletes what was created and records the grant
    as `failed`; nothing half-provisioned is ever active. Fetch credentials from
    `GET /v1/grants/{grant_id}/kubeconfig`.

    Under a policy with `approval`, nothing is created yet: the answer is 202 with the grant
    `pending_approval`, provisioned as above by its last approval."""
    grant = await lifecycle.provision_grant(principal, body)
    response.headers["Location"] = f"{router.prefix}/{grant.id}"
    if grant.status is GrantStatus.PENDING_APPROVAL:
        response.status_code = http_status.HTTP_202_ACCEPTED
    return GrantOut.of(grant)


@router.get(
    "",
    response_model=GrantPage,
    summary="List grants (admins: all grants)",
    response_description="One page of grants, newest first.",
    responses=problem_responses(422),
)
async def list_grants(
    principal: PrincipalDep,
    service: ServiceDep,
    status: Annotated[
        GrantStatus | None,
        Query(
            description="Only grants in this state. Without it, every state but `rejected` "
            "(requests refused for their content, kept for the audit trail)."
        ),
    ] = None,
    namespace: Annotated[
        str | None, Query(max_length=63, description="Only grants for this namespace.")
    ] = None,
    cluster: Annotated[
        str | None, Query(max_length=253, description="Only grants on this cluster.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Grants per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=26, description="The `next_cursor` of the previous page."),
    ] = None,
) -> GrantPage:
    """The caller's own grants; admins see every principal's. With
    `status=pending_approval`, approvers also see the requests they can decide on."""
    grants, next_cursor = await service.list_grants(
        principal,
        status=status,
        namespace=namespace,
        cluster=cluster,
        cursor=cursor,
        limit=limit,
    )
    return GrantPage(items=[GrantOut.of(g) for g in grants], next_cursor=next_cursor)


@router.get(
    "/{grant_id}",
    response_model=GrantOut,
    summary="One grant",
    response_description="The grant.",
    responses=problem_responses(404),
)
async def get_grant(grant_id: GrantId, principal: PrincipalDep, service: ServiceDep) -> GrantOut:
    """A grant the caller requested (admins: any grant; approvers: the grants needing
    approval under their policies)."""
    return GrantOut.of(await service.get_grant(principal, grant_id))


@router.get(
    "/{grant_id}/kubeconfig",
    summary="A kubeconfig with a fresh token (requester only)",
    responses={
        200: {
            "content": {
                "application/yaml": {"example": examples.KUBECONFIG_YAML},
                "application/json": {"example": examples.KUBECONFIG_JSON},
            },
            "description": "The kubeconfig (`Cache-Control: no-store`); every fetch mints a "
            "new token.",
        },
        **problem_responses(
            403,
            404,
            409,
            422,
            502,
            503,
            _403="Admins may see and revoke any grant, but credentials are the requester's; "
            "and no policy may allow the grant any more (it is then revoked by the reaper).",
            _409="The grant is not active (still provisioning, or ended).",
        ),
    },
)
async def get_kubeconfig(
    grant_id: GrantId,
    principal: PrincipalDep,
    service: ServiceDep,
    format: Annotated[
        Literal["yaml", "json"], Query(description="`yaml` (the default) or `json`.")
    ] = "yaml",
) -> Response:
    """One cluster (the server and its CA, never `insecure-skip-tls-verify`), one user with a
    freshly minted ServiceAccount token, one context `scangate-<id>` in the target namespace.
    The token is valid for max(600 s, the grant's remaining time); the grant's real end is
    enforced by deleting the ServiceAccount, which invalidates every token at once. Each fetch
    is audited."""
    kubeconfig = await service.issue_kubeconfig(principal, grant_id)
    if format == "json":
        return Response(json.dumps(kubeconfig), media_type="application/json", headers=_NO_STORE)
    text = yaml.dump(kubeconfig, Dumper=_YAML_DUMPER, sort_keys=False, default_flow_style=False)
    return Response(text, media_type="application/yaml", headers=_NO_STORE)


@router.post(
    "/{grant_id}/renew",
    response_model=GrantOut,
    summary="Extend a grant",
    response_description="The grant with its new `expires_at`.",
    responses=problem_responses(
        403,
        404,
        409,
        422,
        _403="Only the requester may renew, and a policy must still allow the grant.",
        _409="The grant is not active, or already lasts its policy's maximum lifetime.",
    ),
)
async def renew_grant(
    grant_id: GrantId,
    body: Annotated[GrantRenew, Body(openapi_examples=examples.RENEW)],
    principal: PrincipalDep,
    lifecycle: LifecycleDep,
) -> GrantOut:
    """Moves the expiry to now + `ttl_seconds`, never past the policy's maximum lifetime counted
    from the grant's creation, and never earlier than it already is."""
    grant = await lifecycle.renew_grant(principal, grant_id, body.ttl_seconds)
    return GrantOut.of(grant)


@router.post(
    "/{grant_id}/revoke",
    response_model=GrantOut,
    summary="Revoke a grant (idempotent)",
    response_description="The grant, `revoked` (or as it was, if it had already ended).",
    responses={
        202: {
            "model": GrantOut,
            "description": "Accepted: the cluster is unreachable; "
            "the grant stays `revoking` until the reaper finishes it.",
        },
        **problem_responses(404, 422),
    },
)
async def revoke_grant(
    grant_id: GrantId,
    principal: PrincipalDep,
    lifecycle: LifecycleDep,
    response: Response,
    body: Annotated[GrantRevoke | None, Body(openapi_examples=examples.REVOKE)] = None,
) -> GrantOut:
    """Deletes the RoleBinding first (a real API server denies the grant's tokens at once, while
    it may keep authenticating them for a few seconds after the ServiceAccount is gone), then
    the ServiceAccount and the Role. The requester or an admin may revoke; revoking an ended
    grant changes nothing."""
    grant = await lifecycle.revoke_grant(principal, grant_id, body.reason if body else None)
    if grant.status is GrantStatus.REVOKING:
        response.status_code = http_status.HTTP_202_ACCEPTED
    return GrantOut.of(grant)


@router.get(
    "/{grant_id}/events",
    response_model=GrantEventList,
    summary="Audit trail",
    response_description="The grant's events, oldest first.",
    responses=problem_responses(404),
)
async def list_grant_events(
    grant_id: GrantId, principal: PrincipalDep, service: ServiceDep
) -> GrantEventList:
    """Every state change of the grant and every kubeconfig fetch: who, when and details.
    Admins export the events of all grants from `GET /v1/events`."""
    events = await service.list_events(principal, grant_id)
    return GrantEventList(items=[GrantEventOut.of(e) for e in events])


@router.post(
    "/{grant_id}/approve",
    response_model=GrantOut,
    summary="Approve a pending grant (approvers)",
    response_description="The grant after this approval: still `pending_approval` if more "
    "approvals are needed; after the last one, provisioned (`active`, or `failed`/`rejected` "
    "with `last_error` if the cluster refused: the approval stands).",
    responses=problem_responses(
        403,
        404,
        409,
        422,
        _403="Not an approver of the grant's policy, or the requester and the policy refuses "
        "self-approval.",
        _409="The grant is not pending_approval (its status is named), or this approver "
        "already decided.",
    ),
)
async def approve_grant(
    grant_id: GrantId,
    principal: PrincipalDep,
    approvals: ApprovalsDep,
    body: Annotated[GrantApprove | None, Body(openapi_examples=examples.APPROVE)] = None,
) -> GrantOut:
    """One approval by a distinct approver; the grant's policy says how many are required.
    Approvers never obtain the grant's credentials."""
    grant = await approvals.approve(principal, grant_id, body.reason if body else None)
    return GrantOut.of(grant)


@router.post(
    "/{grant_id}/deny",
    response_model=GrantOut,
    summary="Deny a pending grant (approvers)",
    response_description="The grant, `denied`.",
    responses=problem_responses(
        403,
        404,
        409,
        422,
        _403="Not an approver of the grant's policy, or the requester and the policy refuses "
        "self-approval.",
        _409="The grant is not pending_approval (its status is named), or this approver "
        "already decided.",
    ),
)
async def deny_grant(
    grant_id: GrantId,
    body: Annotated[GrantDeny, Body(openapi_examples=examples.DENY)],
    principal: PrincipalDep,
    approvals: ApprovalsDep,
) -> GrantOut:
    """One denial ends the request: nothing was ever created in the cluster."""
    grant = await approvals.deny(principal, grant_id, body.reason)
    return GrantOut.of(grant)
