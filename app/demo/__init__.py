"""The local demo: scangate in front of a simulated cluster, ready to try in one command.

``scangate serve --demo`` checks that its port is free and that no other demo runs from the same
directory, and only then (re)writes ``.scangate-demo/``: a fresh API key, a configuration and an
empty database. It starts kubesim (the simulated API server that enforces real RBAC and
TokenRequest rules) seeded with a ``shop`` namespace and a few pods, serves scangate, and prints
what to try once the server answers. The simulated cluster ends with the demo, however the demo
ends (Ctrl-C, SIGTERM, or the demo's process dying).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from app.auth.api_keys import generate_api_key
from app.demo.banner import demo_banner
from app.demo.cluster import SimulatedCluster, start_simulated_cluster
from app.demo.guard import DemoRefused, bind_listener, exclusive_directory
from app.demo.seed import write_demo_config

DEFAULT_DIRECTORY = ".scangate-demo"
_READY_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class DemoEnvironment:
    """What a running demo consists of: the files written and its simulated cluster."""

    directory: Path
    config_path: Path
    api_key_file: Path
    cluster: SimulatedCluster


@contextlib.contextmanager
def demo_environment(directory: Path) -> Iterator[DemoEnvironment]:
    """Fresh demo state in `directory` and a running simulated cluster, stopped on exit.
    The caller must hold `directory` (guard.exclusive_directory)."""
    (directory / "scangate.db").unlink(missing_ok=True)
    cluster = start_simulated_cluster(directory)
    try:
        api_key, digest = generate_api_key()
        key_file = directory / "api-key"
        key_file.write_text(api_key + "\n")
        os.chmod(key_file, 0o600)
        config_path = write_demo_config(directory, cluster.admin_kubeconfig, digest)
        yield DemoEnvironment(directory, config_path, key_file, cluster)
    finally:
        cluster.stop()


class _Terminated(Exception):
    """SIGTERM arrived: leave the server loop through the normal cleanup path."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _announce_when_ready(url: str, banner: str, stop: threading.Event) -> None:
    """Print `banner` once `url`/healthz answers, so its commands work the moment they appear."""
    deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                print(banner, flush=True)
                return
        except httpx.HTTPError:
            pass
        stop.wait(0.1)


def _client_url(host: str, port: int) -> str:
    # A wildcard bind is reached on loopback; IPv6 literals need brackets in a URL.
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def run_demo(*, host: str, port: int, directory: Path | None = None) -> int:
    """Serve scangate against a fresh simulated cluster until interrupted."""
    directory = (directory or Path(DEFAULT_DIRECTORY)).resolve()
    try:
        listener = bind_listener(host, port, directory)
    except DemoRefused as exc:
        print(f"scangate demo: {exc}", file=sys.stderr)
        return 1
    url = _client_url(host, port)
    with contextlib.closing(listener):
        try:
            with exclusive_directory(directory, url):
                return _serve(listener, url, directory)
        except DemoRefused as exc:
            print(f"scangate demo: {exc}", file=sys.stderr)
            return 1
        except (KeyboardInterrupt, _Terminated):
            # Ctrl-C or SIGTERM: the cluster was stopped on the way out; a normal end.
            return 0


def _serve(listener: socket.socket, url: str, directory: Path) -> int:
    import uvicorn

    from app.db.engine import run_migrations
    from app.main import create_app
    from app.observability.logs import logging_config
    from app.settings import load_settings

    # uvicorn handles SIGTERM during serving and re-raises it after its graceful shutdown;
    # with the default action the process would die there, skipping the cleanup below that
    # stops the simulated cluster. This handler turns it into an exception instead.
    signal.signal(signal.SIGTERM, _raise_terminated)
    # The migration's INFO lines would bury the banner.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with demo_environment(directory) as env:
        settings = load_settings(env.config_path)
        run_migrations(settings.database_url)
        banner = demo_banner(
            base_url=url,
            cluster_url=env.cluster.url,
            config_path=env.config_path,
            api_key_file=env.api_key_file,
        )
        stop = threading.Event()
        announcer = threading.Thread(
            target=_announce_when_ready, args=(url, banner, stop), daemon=True
        )
        # Human-readable lines, warnings and up only, so the banner stays readable.
        config = uvicorn.Config(
            create_app(settings),
            log_config=logging_config(settings.log_format, "warning"),
            access_log=False,
        )
        announcer.start()
        try:
            uvicorn.Server(config).run(sockets=[listener])
        finally:
            stop.set()
    return 0
