"""Wires observability into one app: its metrics, the request middleware and `/metrics`."""

from __future__ import annotations

from fastapi import FastAPI

from app.observability.endpoint import router as metrics_router
from app.observability.metrics import ScangateMetrics
from app.observability.requests import RequestObservabilityMiddleware


def install_observability(app: FastAPI, metrics: ScangateMetrics) -> None:
    app.state.metrics = metrics
    app.add_middleware(RequestObservabilityMiddleware, metrics=metrics)
    app.include_router(metrics_router)
