"""A real scangate (uvicorn on a loopback port) and a headless Debian Chromium that may only talk
to loopback: every other request is aborted and recorded, so a page that needs the internet
fails visibly (the point of offline docs in air-gapped clusters)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
import yaml

from app.db.engine import run_migrations
from app.main import create_app
from app.settings import load_settings
from kubesim.pytest_plugin import KubesimHandle
from tests.support.browser import Browser

playwright_sync = pytest.importorskip("playwright.sync_api")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
NETWORK_SCHEMES = frozenset({"http", "https", "ws", "wss"})  # data: and blob: stay in the page
# Chromium must not reach out on its own (updates, sync, safe browsing...): those requests do
# not go through page routing, so they are switched off instead of intercepted.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the Debian package `chromium` is required in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture
def live_server(tmp_path: Path, kubesim: KubesimHandle) -> Iterator[str]:
    """scangate served by uvicorn on 127.0.0.1, the way `scangate serve` runs it."""
    database_url = f"sqlite:///{tmp_path / 'scangate.db'}"
    run_migrations(database_url)
    config = tmp_path / "scangate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": database_url,
                "clusters": [{"name": "default", "kubeconfig": str(kubesim.admin_kubeconfig)}],
            }
        )
    )
    app = create_app(load_settings(config))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Browser]:
    with playwright_sync.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_FLAGS
        )
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        session = Browser(page)

        def only_loopback(route: Any) -> None:
            url = route.request.url
            parts = urlsplit(url)
            if parts.scheme in NETWORK_SCHEMES and (parts.hostname or "") not in LOOPBACK_HOSTS:
                session.blocked.append(url)
                route.abort("blockedbyclient")
            else:
                route.continue_()

        context.route("**/*", only_loopback)
        page.on(
            "console",
            lambda message: (
                session.errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: session.errors.append(str(error)))
        try:
            yield session
        finally:
            context.close()
            chromium.close()
