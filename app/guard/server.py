"""`scangate serve` with the guard: two uvicorn servers, the REST API and the guard's HTTPS
webhook listener, in one process and one event loop.

One process rather than a second Deployment: the guard reads the same database and
configuration as the API, the chart already runs and scales the API pods, and a second process
type would need its own probes, PodDisruptionBudget and rollout. The listeners stay separate
(port, certificate, app), so the API port never needs to be reachable from the control plane.

The two servers share signal handling here (uvicorn's own handlers belong to one server):
SIGTERM/SIGINT stop both, and when either stops for another reason (its port is taken, say),
the other stops too, so Kubernetes restarts a pod that is only half serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator, Sequence

import uvicorn

from app.guard.app import create_guard_app
from app.settings import Settings
from app.tls_files import ReloadingCertificate


class SharedSignalsServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # serve_with_guard installs one handler for both servers.
        yield


def guard_config(
    settings: Settings, *, log_level: str
) -> tuple[uvicorn.Config, ReloadingCertificate]:
    guard = settings.guard
    # Both are required when the guard is enabled (GuardConfig).
    assert guard.cert_file is not None
    assert guard.key_file is not None
    certificate = ReloadingCertificate(guard.cert_file, guard.key_file)
    config = uvicorn.Config(
        create_guard_app(settings),
        host=guard.host,
        port=guard.port,
        log_level=log_level,
        log_config=None,  # the API's server configured logging already
        access_log=False,
        ssl_context_factory=lambda _config, _default: certificate.context,
        timeout_keep_alive=65,
        # kube-apiserver keeps connections open; on SIGTERM, requests in flight finish, then
        # the rest are closed well inside the pod's termination grace period.
        timeout_graceful_shutdown=20,
    )
    return config, certificate


def serve_with_guard(
    api: uvicorn.Config,
    settings: Settings,
    *,
    log_level: str,
    api_certificate: ReloadingCertificate | None = None,
) -> None:
    config, certificate = guard_config(settings, log_level=log_level)
    certificates = [certificate] + ([api_certificate] if api_certificate else [])
    servers = [SharedSignalsServer(api), SharedSignalsServer(config)]
    asyncio.run(run_servers(servers, certificates))


async def run_servers(
    servers: Sequence[uvicorn.Server], certificates: Sequence[ReloadingCertificate]
) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    watchers = [asyncio.create_task(c.watch()) for c in certificates]
    try:
        tasks = [asyncio.create_task(s.serve()) for s in servers]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()
    finally:
        for watcher in watchers:
            watcher.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
