"""`GET /metrics`: the app's Prometheus registry, with the active-grants gauge read fresh."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import SQLAlchemyError

from app.services import Services, ServicesDep

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

# A scrape must answer even when the database does not (that is when metrics matter most):
# the gauge then keeps its last value and the failure is logged.
_DATABASE_TIMEOUT_SECONDS: Final = 2.0

_EXAMPLE: Final = """\
# HELP scangate_grants_active Grants currently active, read from the database at scrape time.
# TYPE scangate_grants_active gauge
scangate_grants_active{cluster="default",scanner="exec"} 3.0
# HELP scangate_grants_created_total Grants that became active.
# TYPE scangate_grants_created_total counter
scangate_grants_created_total{cluster="default",scanner="exec"} 42.0
"""


async def refresh_active_grants(services: Services) -> None:
    try:
        async with asyncio.timeout(_DATABASE_TIMEOUT_SECONDS):
            counts = await services.grants.count_active_grants()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("metrics: active grants not refreshed (%s)", type(exc).__name__)
        return
    services.metrics.set_active_grants(counts)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text format, or OpenMetrics when the scraper's "
            "`Accept` asks for it.",
            "content": {"text/plain; version=0.0.4": {"example": _EXAMPLE}},
        }
    },
)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Grants created, revoked, expired and failed (by cluster and scanner), active grants,
    request latency by route, Kubernetes call latency and errors (by verb and resource),
    reaper pass duration, revocation lag and orphans swept. Unauthenticated, like `/healthz`:
    it holds counts and names from the configuration, never grant contents or secrets."""
    await refresh_active_grants(services)
    body, content_type = services.metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
