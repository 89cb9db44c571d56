"""The application factory: `create_app(settings)` wires settings, the database, the cluster
clients, authentication, policies and the reaper into one FastAPI app.

Nothing is created at import time: every engine, client and task belongs to one app's lifespan,
so tests, the CLI and several apps in one process (the two-replica tests) never share state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any, Final

from fastapi import FastAPI, Request

from app.auth import PolicyEngine, build_authenticator
from app.auth.endpoints import router as auth_router
from app.db.engine import Database
from app.db.urls import redacted_url
from app.errors import ScangateError, install_error_handlers
from app.grants.endpoints import router as grants_router
from app.grants.reaper import Reaper
from app.kube.clusters import ClusterRegistry, ClusterSettings
from app.kube.errors import KubeError
from app.settings import Settings, load_settings

logger = logging.getLogger(__name__)

# A readiness probe must answer before the kubelet's probe timeout (default 1 s, usually raised
# to a few seconds): each check gets this long, and all run concurrently.
READY_CHECK_TIMEOUT_SECONDS: Final = 3.0


class NotReady(ScangateError):
    status = 503
    title = "Not Ready"
    type_slug = "not-ready"


def _build_cluster_registry(settings: Settings) -> ClusterRegistry:
    return ClusterRegistry.from_settings(
        [
            ClusterSettings(
                name=c.name,
                kubeconfig=c.kubeconfig,
                context=c.context,
                server=c.server,
                grants_namespace=c.grants_namespace,
            )
            for c in settings.clusters
        ]
    )


def _log_startup(settings: Settings) -> None:
    logger.info(
        "scangate starting: database %s, clusters %s, %d API key(s), %d policies",
        redacted_url(settings.database_url),
        ", ".join(c.name for c in settings.clusters),
        len(settings.api_keys),
        len(settings.policies),
    )
    if not settings.policies:
        logger.warning("no policies configured: every grant request will be denied")
    if settings.oidc:
        logger.info("trusting OIDC ID tokens of %s", ", ".join(o.issuer for o in settings.oidc))


def create_app(settings: Settings | None = None, *, start_reaper: bool = True) -> FastAPI:
    """A new app. Settings are loaded now (bad configuration fails here, before serving)."""
    settings = settings if settings is not None else load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _log_startup(settings)
        state = app.state
        state.settings = settings
        state.policies = PolicyEngine(settings)
        state.authenticator = build_authenticator(settings)
        async with contextlib.AsyncExitStack() as stack:
            state.db = Database(settings.database_url)
            stack.push_async_callback(state.db.dispose)
            state.clusters = _build_cluster_registry(settings)
            stack.callback(state.clusters.close)
            state.reaper = None
            if start_reaper and settings.reaper.enabled:
                state.reaper = Reaper(state)
                await state.reaper.start()
                # Stopped first (callbacks run in reverse): it uses the db and clusters.
                stack.push_async_callback(state.reaper.stop)
            yield

    app = FastAPI(
        title="scangate",
        version=_version(),
        summary="Just-in-time, least-privilege, time-limited Kubernetes pod access for scanners",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(auth_router)
    app.include_router(grants_router)

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The database and every cluster answer")
    async def readyz(request: Request) -> dict[str, Any]:
        return await _readiness(request.app.state)

    return app


async def _check(name: str, probe: Any) -> tuple[str, str | None]:
    """Run one readiness probe: (name, None) if it answered, else (name, safe reason)."""
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_SECONDS):
            await probe()
    except TimeoutError:
        return name, f"no answer within {READY_CHECK_TIMEOUT_SECONDS:g}s"
    except KubeError as exc:
        return name, str(exc)  # KubeError messages are safe to show by contract
    except Exception as exc:
        # A probe reports every failure, whatever it is; only the type is shown because
        # database driver messages can include connection details.
        return name, type(exc).__name__
    return name, None


async def _readiness(state: Any) -> dict[str, Any]:
    clusters: ClusterRegistry = state.clusters
    probes: list[tuple[str, Any]] = [("database", state.db.ping)]
    probes += [(f"cluster {n}", clusters.get(n).ping) for n in clusters.names()]
    results = await asyncio.gather(*(_check(name, probe) for name, probe in probes))
    checks = {name: ("ok" if reason is None else reason) for name, reason in results}
    failed = [name for name, reason in results if reason is not None]
    if failed:
        raise NotReady(
            f"not ready: {'; '.join(f'{n}: {checks[n]}' for n in failed)}", checks=checks
        )
    return {"status": "ready", "checks": checks}


def _version() -> str:
    try:
        return metadata.version("scangate")
    except metadata.PackageNotFoundError:
        return "0+unknown"
