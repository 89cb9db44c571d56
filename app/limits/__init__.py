"""Limits at the edge of the API: the request body size (an ASGI middleware, so an oversized
body is refused before anything parses it) and per-principal rate limiting (a token bucket
checked right after authentication, since the principal is what is limited).

`install_request_limits(app, settings)` wires both into one app; the app factory calls it.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.limits.body_size import BodySizeLimitMiddleware
from app.limits.rate_limit import RateLimited, RateLimiter, enforce_rate_limit
from app.settings import Settings

__all__ = [
    "BodySizeLimitMiddleware",
    "RateLimited",
    "RateLimiter",
    "enforce_rate_limit",
    "install_request_limits",
]


def install_request_limits(app: FastAPI, settings: Settings) -> None:
    """The body-size middleware and this app's rate limiter (`app.state.rate_limiter`, None
    when `rate_limit` is not configured). Call before installing observability, so its
    middleware stays outermost and 413s get a request id and a metric too."""
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    limit = settings.rate_limit
    app.state.rate_limiter = (
        RateLimiter(requests_per_minute=limit.requests_per_minute, burst=limit.burst)
        if limit is not None
        else None
    )
