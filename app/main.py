"""The application factory: `create_app(settings)` wires settings, the database, the cluster
clients, authentication, policies and the reaper into one FastAPI app, with its metrics, request
logging and offline API docs.

Nothing is created at import time: every engine, client and task belongs to one app's lifespan,
so tests, the CLI and several apps in one process (the two-replica tests) never share state.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import metadata

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.audit.endpoints import router as audit_router
from app.auth import PolicyEngine, build_authenticator
from app.auth.endpoints import router as auth_router
from app.db.engine import Database
from app.db.urls import redacted_url
from app.docs.openapi import API_DESCRIPTION, OPENAPI_TAGS, install_openapi
from app.docs.pages import install_docs_pages
from app.errors import install_error_handlers
from app.grants.endpoints import router as grants_router
from app.grants.group_commit import GrantWriter
from app.grants.reaper import Reaper
from app.health import router as health_router
from app.kube.clusters import CallObserver, ClusterRegistry, ClusterSettings
from app.limits import install_request_limits
from app.observability.install import install_observability
from app.observability.metrics import ScangateMetrics
from app.settings import Settings, load_settings

logger = logging.getLogger(__name__)


async def _build_cluster_registry(settings: Settings, observer: CallObserver) -> ClusterRegistry:
    return await ClusterRegistry.from_settings(
        [
            ClusterSettings(
                name=c.name,
                kubeconfig=c.kubeconfig,
                context=c.context,
                server=c.server,
                grants_namespace=c.grants_namespace,
            )
            for c in settings.clusters
        ],
        observer=observer,
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
    metrics = ScangateMetrics(c.name for c in settings.clusters)

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
            state.grant_writer = GrantWriter(state.db)
            # Before the engine is disposed: writes already handed over still commit.
            stack.push_async_callback(state.grant_writer.drain)
            state.clusters = await _build_cluster_registry(settings, metrics.kube_call_finished)
            stack.push_async_callback(state.clusters.aclose)
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
        description=API_DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN: blank in air-gapped
        # clusters. app/docs serves them from the package instead.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Before observability: its middleware must stay outermost (413s get a request id too).
    install_request_limits(app, settings)
    install_observability(app, metrics)
    for router in (auth_router, grants_router, audit_router, health_router):
        app.include_router(router)
    install_docs_pages(app)
    install_openapi(app)
    return app


def _operation_id(route: APIRoute) -> str:
    # The endpoint function's name (`create_grant`), for readable generated clients.
    return route.name


def _version() -> str:
    try:
        return metadata.version("scangate")
    except metadata.PackageNotFoundError:
        return "0+unknown"
