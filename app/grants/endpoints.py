"""HTTP routes `/v1/grants...`: parse, call the service, shape the response. Nothing else."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import yaml
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi import status as http_status

from app.auth import PrincipalDep
from app.db.session import SessionDep
from app.grants.schemas import (
    GrantCreate,
    GrantEventList,
    GrantEventOut,
    GrantOut,
    GrantPage,
    GrantRenew,
    GrantRevoke,
    GrantStatus,
)
from app.grants.service import GrantService

router = APIRouter(prefix="/v1/grants", tags=["grants"])

# Credentials must not linger in proxies, browser caches or CI caches.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def get_grant_service(request: Request) -> GrantService:
    return GrantService.from_state(request.app.state)


ServiceDep = Annotated[GrantService, Depends(get_grant_service)]
GrantId = Annotated[str, Path(description="A grant id (26 lowercase characters).")]


@router.post(
    "",
    status_code=http_status.HTTP_201_CREATED,
    response_model=GrantOut,
    summary="Request access to pods",
)
async def create_grant(
    body: GrantCreate, principal: PrincipalDep, service: ServiceDep, response: Response
) -> GrantOut:
    grant = await service.provision_grant(principal, body)
    response.headers["Location"] = f"{router.prefix}/{grant.id}"
    return GrantOut.of(grant)


@router.get("", response_model=GrantPage, summary="List grants (admins: all grants)")
async def list_grants(
    principal: PrincipalDep,
    service: ServiceDep,
    session: SessionDep,
    status: Annotated[GrantStatus | None, Query()] = None,
    namespace: Annotated[str | None, Query(max_length=63)] = None,
    cluster: Annotated[str | None, Query(max_length=253)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=26)] = None,
) -> GrantPage:
    grants, next_cursor = await service.list_grants(
        session,
        principal,
        status=status,
        namespace=namespace,
        cluster=cluster,
        cursor=cursor,
        limit=limit,
    )
    return GrantPage(items=[GrantOut.of(g) for g in grants], next_cursor=next_cursor)


@router.get("/{grant_id}", response_model=GrantOut, summary="One grant")
async def get_grant(
    grant_id: GrantId, principal: PrincipalDep, service: ServiceDep, session: SessionDep
) -> GrantOut:
    return GrantOut.of(await service.get_grant(session, principal, grant_id))


@router.get(
    "/{grant_id}/kubeconfig",
    summary="A kubeconfig with a fresh token (requester only)",
    responses={
        200: {
            "content": {"application/yaml": {}, "application/json": {}},
            "description": "The kubeconfig; every fetch mints a new token.",
        }
    },
)
async def get_kubeconfig(
    grant_id: GrantId,
    principal: PrincipalDep,
    service: ServiceDep,
    format: Annotated[Literal["yaml", "json"], Query()] = "yaml",
) -> Response:
    kubeconfig = await service.issue_kubeconfig(principal, grant_id)
    if format == "json":
        return Response(json.dumps(kubeconfig), media_type="application/json", headers=_NO_STORE)
    text = yaml.safe_dump(kubeconfig, sort_keys=False, default_flow_style=False)
    return Response(text, media_type="application/yaml", headers=_NO_STORE)


@router.post("/{grant_id}/renew", response_model=GrantOut, summary="Extend a grant")
async def renew_grant(
    grant_id: GrantId,
    body: GrantRenew,
    principal: PrincipalDep,
    service: ServiceDep,
    session: SessionDep,
) -> GrantOut:
    grant = await service.renew_grant(session, principal, grant_id, body.ttl_seconds)
    return GrantOut.of(grant)


@router.post(
    "/{grant_id}/revoke",
    response_model=GrantOut,
    summary="Revoke a grant (idempotent)",
    responses={
        202: {
            "model": GrantOut,
            "description": "Accepted: the cluster is unreachable; "
            "the grant stays `revoking` until the reaper finishes it.",
        }
    },
)
async def revoke_grant(
    grant_id: GrantId,
    principal: PrincipalDep,
    service: ServiceDep,
    response: Response,
    body: Annotated[GrantRevoke | None, Body()] = None,
) -> GrantOut:
    grant = await service.revoke_grant(principal, grant_id, body.reason if body else None)
    if grant.status == "revoking":
        response.status_code = http_status.HTTP_202_ACCEPTED
    return GrantOut.of(grant)


@router.get("/{grant_id}/events", response_model=GrantEventList, summary="Audit trail")
async def list_grant_events(
    grant_id: GrantId, principal: PrincipalDep, service: ServiceDep, session: SessionDep
) -> GrantEventList:
    events = await service.list_events(session, principal, grant_id)
    return GrantEventList(items=[GrantEventOut.of(e) for e in events])
