"""`Services`: everything one running app works with, built once in its lifespan.

`app.main.open_services` builds the value (the configuration in force, the database, the
cluster clients, the grant lifecycle and the reaper) and closes it again; the app
lifespan, `scangate reap --once` and tests use that one builder. Routes get it, or the part they
need, through the typed dependencies below; nothing reads `app.state` untyped.

This module holds only the container and its accessors: its imports of the packages it names
are for type checking, so any route module may depend on it without an import cycle
(docs/ARCHITECTURE.md, "Packages and boundaries").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Request

if TYPE_CHECKING:
    from app.auth.authenticator import Authenticator
    from app.auth.policies import PolicyEngine
    from app.db.engine import Database
    from app.grants.approvals import GrantApprovals
    from app.grants.ending import GrantEnder
    from app.grants.lifecycle import GrantLifecycle
    from app.grants.reaper import Reaper
    from app.grants.service import GrantService
    from app.kube.clusters import ClusterRegistry
    from app.limits.rate_limit import RateLimiter
    from app.notifications.targets import NotificationTargets
    from app.observability.metrics import ScangateMetrics
    from app.reload import ConfigReloader, LiveConfig
    from app.settings import Settings


@dataclass(frozen=True)
class Services:
    # The configuration in force: settings, policies and authenticator, replaced together by a
    # reload (app/reload); read them through the properties below, once per use.
    config: LiveConfig
    # None where nothing reloads (`scangate reap --once`).
    config_reloader: ConfigReloader | None
    db: Database
    clusters: ClusterRegistry
    metrics: ScangateMetrics
    # None when `rate_limit` is not configured.
    rate_limiter: RateLimiter | None
    lifecycle: GrantLifecycle
    approvals: GrantApprovals
    ender: GrantEnder
    grants: GrantService
    # None where no reaper runs in this process (`reaper.enabled: false`, tests, the CLI).
    reaper: Reaper | None
    # The notification targets in force; a configuration reload calls its `replace()`.
    notifications: NotificationTargets | None = None

    @property
    def settings(self) -> Settings:
        return self.config.current().settings

    @property
    def policies(self) -> PolicyEngine:
        return self.config.current().policies

    @property
    def authenticator(self) -> Authenticator:
        return self.config.current().authenticator


def attach_services(app: FastAPI, services: Services | None) -> None:
    """Make `services` the app's (None when its lifespan ends)."""
    app.state.services = services


def services_of(app: FastAPI) -> Services:
    """The app's services; only while its lifespan runs."""
    services = getattr(app.state, "services", None)
    if services is None:
        raise RuntimeError("the app's services exist only while its lifespan runs")
    assert isinstance(services, Services)
    return services


async def get_services(request: Request) -> Services:
    # `async` although it awaits nothing: FastAPI runs plain `def` dependencies in a worker
    # thread, a thread hop on every request for an attribute lookup.
    return services_of(request.app)


ServicesDep = Annotated[Services, Depends(get_services)]
