"""The local demo: scangate in front of a simulated cluster, ready to try in one command.

``scangate serve --demo`` checks that its port is free and that no other demo runs from the same
directory, and only then (re)writes ``.scangate-demo/``: a fresh API key, a configuration and an
empty database. It starts kubesim (the simulated API server that enforces real RBAC and
TokenRequest rules) seeded with a ``shop`` namespace and a few pods, serves scangate with its
grant guard registered in that cluster as an admission webhook (app/demo/admission.py), and
prints what to try once both answer. The simulated cluster ends with the demo, however the demo
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
import uvicorn

from app.auth.api_keys import generate_api_key
from app.demo.admission import (
    bind_guard_listener,
    guard_url,
    webhook_seed,
    write_guard_certificate,
)
from app.demo.banner import demo_banner
from app.demo.cluster import SimulatedCluster, start_simulated_cluster
from app.demo.guard import DemoRefused, bind_listener, exclusive_directory
from app.demo.seed import GuardListenerConfig, write_demo_config

DEFAULT_DIRECTORY = ".scangate-demo"
_READY_TIMEOUT_SECONDS = 60
_GUARD_STOP_TIMEOUT_SECONDS = 25


@dataclass(frozen=True)
class DemoEnvironment:
    """What a running demo consists of: the files written and its simulated cluster."""

    directory: Path
    config_path: Path
    api_key_file: Path
    cluster: SimulatedCluster
    guard_listener: socket.socket


@contextlib.contextmanager
def demo_environment(directory: Path) -> Iterator[DemoEnvironment]:
    """Fresh demo state in `directory` and a running simulated cluster, stopped on exit.
    The caller must hold `directory` (guard.exclusive_directory)."""
    (directory / "scangate.db").unlink(missing_ok=True)
    guard_listener = bind_guard_listener()
    with contextlib.closing(guard_listener):
        guard_port = guard_listener.getsockname()[1]
        certificate = write_guard_certificate(directory)
        cluster = start_simulated_cluster(
            directory, webhook_seed(guard_url(guard_port), certificate.ca_pem)
        )
        try:
            api_key, digest = generate_api_key()
            key_file = directory / "api-key"
            key_file.write_text(api_key + "\n")
            os.chmod(key_file, 0o600)
            guard = GuardListenerConfig(guard_port, certificate.cert_file, certificate.key_file)
            config_path = write_demo_config(directory, cluster.admin_kubeconfig, digest, guard)
            yield DemoEnvironment(directory, config_path, key_file, cluster, guard_listener)
        finally:
            cluster.stop()


class _Terminated(Exception):
    """SIGTERM arrived: leave the server loop through the normal cleanup path."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _announce_when_ready(
    url: str, banner: str, stop: threading.Event, guard: uvicorn.Server
) -> None:
    """Print `banner` once `url`/healthz answers and the guard listens, so its commands work
    the moment they appear."""
    deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if guard.started and httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
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
    from app.db.engine import run_migrations
    from app.guard.server import guard_config
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
            guard_url=guard_url(env.guard_listener.getsockname()[1]),
            config_path=env.config_path,
            api_key_file=env.api_key_file,
        )
        # The guard serves from its own thread and event loop: uvicorn leaves signal handling
        # to the main thread's server (the API's), whose end stops the guard below.
        guard_server_config = guard_config(settings, log_level="warning")[0]
        # kubesim keeps idle connections to the webhook open; a demo ends without waiting.
        guard_server_config.timeout_graceful_shutdown = 2
        guard = uvicorn.Server(guard_server_config)
        guard_thread = threading.Thread(
            target=guard.run, kwargs={"sockets": [env.guard_listener]}, daemon=True
        )
        stop = threading.Event()
        announcer = threading.Thread(
            target=_announce_when_ready, args=(url, banner, stop, guard), daemon=True
        )
        # Human-readable lines, warnings and up only, so the banner stays readable.
        config = uvicorn.Config(
            create_app(settings),
            log_config=logging_config(settings.log_format, "warning"),
            access_log=False,
        )
        guard_thread.start()
        announcer.start()
        try:
            uvicorn.Server(config).run(sockets=[listener])
        finally:
            stop.set()
            guard.should_exit = True
            guard_thread.join(timeout=_GUARD_STOP_TIMEOUT_SECONDS)
    return 0
