"""A running app together with the reloader of the file it was started from."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from app.main import config_reloader_of, create_app
from app.reload import ConfigReloader
from tests.support.scangate import Deployment, Scangate


class Reloadable(Scangate):
    @property
    def reloader(self) -> ConfigReloader:
        return config_reloader_of(self.app)


@contextlib.asynccontextmanager
async def running(deployment: Deployment) -> AsyncIterator[Reloadable]:
    """The app of `deployment`'s file (lifespan entered, no reaper), reloadable from it."""
    app = create_app(deployment.settings, start_reaper=False, config_path=deployment.config_path)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://scangate.test", timeout=60
        ) as http:
            yield Reloadable(app, http, deployment.api_keys)
