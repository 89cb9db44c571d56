"""The application factory: `create_app(settings)` wires settings, the database, the cluster
clients, authentication, policies and the reaper into one FastAPI app, with its metrics, request
logging and offline API docs.

Nothing is created at import time: every engine, client and task belongs to one app's lifespan,
so tests, the CLI and several apps in one process (the two-replica tests) never share state.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator
from importlib import metadata

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from app.auth.endpoints import router as auth_router
from app.db.engine import Database
from app.db.urls import redacted_url
from app.db.wal_checkpoint import WalCheckpointer
from app.docs.openapi import API_DESCRIPTION, OPENAPI_TAGS, install_openapi
from app.docs.pages import install_docs_pages
from app.errors import install_error_handlers
from app.grants.approvals import GrantApprovals
from app.grants.audit_feed import router as audit_router
from app.grants.ending import GrantEnder
from app.grants.endpoints import router as grants_router
from app.grants.group_commit import GrantWriter
from app.grants.ids import is_grant_id
from app.grants.lifecycle import GrantLifecycle, no_reaper
from app.grants.reaper import Reaper, ReaperPass, ReapReport
from app.grants.service import GrantService
from app.health import router as health_router
from app.kube.clusters import ClusterRegistry, ClusterSettings
from app.limits import enforce_rate_limit, install_request_limits, rate_limiter_for
from app.notifications import NotificationTargets, NotificationWorker, attach_outbox
from app.observability.install import install_observability
from app.observability.metrics import ScangateMetrics
from app.reload import ConfigReloader, LiveConfig, PinConfigMiddleware, build_generation
from app.services import Services, attach_services
from app.settings import Settings, config_file_path, load_settings

logger = logging.getLogger(__name__)


def kube_cluster_settings(settings: Settings) -> list[ClusterSettings]:
    """The configured clusters as the kube package takes them."""
    return [
        ClusterSettings(
            name=c.name, kubeconfig=c.kubeconfig, context=c.context, server=c.server,
            grants_namespace=c.grants_namespace,
            installation_id=settings.installation_id_for(c),
        )
        for c in settings.clusters
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    metrics: ScangateMetrics | None = None,
    start_reaper: bool = False,
    reloader: ConfigReloader | None = None,
) -> AsyncIterator[Services]:
    """Everything an app (or `scangate reap --once`) works with, built once and closed in
    reverse order: the reaper stops first (it uses the database and the clusters), the grant
    writer drains before the engine is disposed (writes handed over still commit).

    With a `reloader`, its configuration is the one in force (reloads replace it); without,
    `settings` stay in force for the services' life."""
    metrics = metrics if metrics is not None else ScangateMetrics(c.name for c in settings.clusters)
    config = reloader.live if reloader is not None else LiveConfig(build_generation(settings))
    async with contextlib.AsyncExitStack() as stack:
        db = Database(settings.database_url)
        stack.push_async_callback(db.dispose)
        if db.sqlite_file is not None:
            # Commits append to SQLite's log; copying it back (and syncing) happens here, off
            # the requests' commits. Stops before the engine is disposed.
            checkpointer = WalCheckpointer(db.sqlite_file)
            checkpointer.start()
            stack.push_async_callback(checkpointer.stop)
        # Every audit event written through `db` queues the notifications targets want, in its
        # own transaction (app/notifications/outbox.py); a reload replaces the targets.
        notifications = NotificationTargets.from_settings(config.newest().settings.notifications)
        config.subscribe(lambda new: notifications.replace_from_settings(new.notifications))
        attach_outbox(db, notifications)
        writer = GrantWriter(db, notifications=notifications)
        stack.push_async_callback(writer.drain)
        clusters = await ClusterRegistry.from_settings(
            kube_cluster_settings(settings), observer=metrics.kube_call_finished
        )
        stack.push_async_callback(clusters.aclose)
        reaper = Reaper(settings) if start_reaper and settings.reaper.enabled else None
        ender = GrantEnder(config=config, db=db, clusters=clusters, metrics=metrics)
        lifecycle = GrantLifecycle(
            config=config, db=db, clusters=clusters, writer=writer, ender=ender, metrics=metrics,
            wake_reaper=reaper.wake if reaper is not None else no_reaper,
        )  # fmt: skip
        approvals = GrantApprovals(
            db=db, config=config, lifecycle=lifecycle,
            wake_reaper=reaper.wake if reaper is not None else no_reaper,
        )  # fmt: skip
        services = Services(
            config=config,
            config_reloader=reloader,
            db=db,
            clusters=clusters,
            metrics=metrics,
            rate_limiter=rate_limiter_for(settings),
            lifecycle=lifecycle,
            approvals=approvals,
            ender=ender,
            grants=GrantService(db, clusters, config),
            reaper=reaper,
            notifications=notifications,
        )
        if start_reaper:
            # Delivery runs where the reaper may (not in `scangate reap --once` or the CLI); it
            # idles while no target is configured, and stops after the reaper, before the
            # writer drains and the engine is disposed.
            worker = NotificationWorker(db, notifications, metrics=metrics)
            await worker.start()
            stack.push_async_callback(worker.stop)
        if reaper is not None:
            await reaper.start(reaper_pass(services))
            stack.push_async_callback(reaper.stop)
            # A reload may take away what active grants were allowed: the next pass checks.
            config.subscribe(lambda _settings: reaper.wake())
        yield services


def reaper_pass(services: Services) -> ReaperPass:
    return ReaperPass(
        services.ender,
        services.approvals,
        services.settings,
        services.db,
        services.clusters,
        metrics=services.metrics,
    )


async def reap_once(settings: Settings) -> ReapReport:
    """One full reaper pass (sweep included) with its own services: `scangate reap --once`."""
    async with open_services(settings) as services:
        return await reaper_pass(services).run(sweep=True)


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


def create_app(
    settings: Settings | None = None,
    *,
    start_reaper: bool = True,
    config_path: str | os.PathLike[str] | None = None,
) -> FastAPI:
    """A new app. Settings are loaded now (bad configuration fails here, before serving).

    A reload (`config_reloader_of(app)`) reads `config_path` as `load_settings` does (None:
    `SCANGATE_CONFIG` or ./scangate.yaml), so pass the path `settings` were loaded from."""
    settings = settings if settings is not None else load_settings(config_path)
    # Built with the app, not in the lifespan: the request middleware counts with it.
    metrics = ScangateMetrics(c.name for c in settings.clusters)
    # Also built with the app: `scangate serve` hands it to the guard's listener and to its
    # SIGHUP handler before the lifespan starts.
    reloader = ConfigReloader(
        LiveConfig(build_generation(settings)),
        functools.partial(load_settings, config_path),
        path=config_file_path(config_path),
        registry=metrics.registry,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _log_startup(settings)
        async with open_services(
            settings, metrics=metrics, start_reaper=start_reaper, reloader=reloader
        ) as services:
            attach_services(app, services)
            try:
                yield
            finally:
                attach_services(app, None)

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
    app.state.config_reloader = reloader
    install_error_handlers(app)
    # Innermost: every request reads one configuration generation throughout (app/reload).
    app.add_middleware(PinConfigMiddleware, config=reloader.live)
    # Before observability: its middleware must stay outermost (413s get a request id too).
    install_request_limits(app, settings.max_request_body_bytes)
    install_observability(app, metrics, is_grant_id=is_grant_id)
    # Every route of these authenticates; its principal is then rate limited.
    for router in (auth_router, grants_router, audit_router):
        app.include_router(router, dependencies=[Depends(enforce_rate_limit)])
    app.include_router(health_router)
    install_docs_pages(app)
    install_openapi(app)
    return app


def config_reloader_of(app: FastAPI) -> ConfigReloader:
    """The reloader of an app made by `create_app` (usable before its lifespan starts)."""
    reloader = app.state.config_reloader
    assert isinstance(reloader, ConfigReloader)
    return reloader


def _operation_id(route: APIRoute) -> str:
    # The endpoint function's name (`create_grant`), for readable generated clients.
    return route.name


def _version() -> str:
    try:
        return metadata.version("scangate")
    except metadata.PackageNotFoundError:
        return "0+unknown"
