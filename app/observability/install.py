"""Wires observability into one app: its metrics, the request middleware and `/metrics`."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from app.observability.endpoint import router as metrics_router
from app.observability.metrics import ScangateMetrics
from app.observability.requests import RequestObservabilityMiddleware


def install_observability(
    app: FastAPI, metrics: ScangateMetrics, *, is_grant_id: Callable[[str], bool]
) -> None:
    # install_error_handlers has run (app/main.py): its handler of unexpected exceptions.
    app.add_middleware(
        RequestObservabilityMiddleware,
        metrics=metrics,
        is_grant_id=is_grant_id,
        on_unexpected=app.exception_handlers.get(Exception),
    )
    app.include_router(metrics_router)
