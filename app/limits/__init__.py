"""Limits at the edge of the API: the request body size (an ASGI middleware, so an oversized
body is refused before anything parses it) and per-principal rate limiting (a token bucket
checked right after authentication, since the principal is what is limited).

`install_request_limits(app, max_body_bytes)` installs the body-size middleware;
`enforce_rate_limit` is a dependency of the routers that authenticate (`app.main`), and
`rate_limiter_for(settings)` builds the limiter `open_services` keeps.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.limits.body_size import BodySizeLimitMiddleware
from app.limits.rate_limit import RateLimited, RateLimiter, enforce_rate_limit, rate_limiter_for

__all__ = [
    "BodySizeLimitMiddleware",
    "RateLimited",
    "RateLimiter",
    "enforce_rate_limit",
    "install_request_limits",
    "rate_limiter_for",
]


def install_request_limits(app: FastAPI, max_body_bytes: int) -> None:
    """The body-size middleware. Call before installing observability, so its middleware stays
    outermost and 413s get a request id and a metric too."""
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
