"""Running uvicorn servers for `scangate serve`: the REST API and, when enabled, the grant
guard's webhook listener (app/guard/server.py), in one process and one event loop, each with
its own port and optionally its own certificate (reloaded when its files change,
app/tls_files.py).

The servers share signal handling here (uvicorn's own handlers belong to one server):
SIGTERM/SIGINT stop all of them, and when one stops for another reason (its port is taken,
say), the others stop too, so Kubernetes restarts a pod that is only half serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator, Sequence

import uvicorn

from app.tls_files import ReloadingCertificate


class SharedSignalsServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # run_servers installs one handler for all servers.
        yield


def serve_all(
    configs: Sequence[uvicorn.Config], certificates: Sequence[ReloadingCertificate]
) -> None:
    servers = [SharedSignalsServer(config) for config in configs]
    # The event loop uvicorn itself would pick (uvloop where installed), as `uvicorn.run` does.
    with asyncio.Runner(loop_factory=configs[0].get_loop_factory()) as runner:
        runner.run(run_servers(servers, certificates))


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


def tls_options(certificate: ReloadingCertificate | None) -> dict[str, object]:
    """uvicorn.Config keyword arguments serving `certificate` (none: plain HTTP)."""
    if certificate is None:
        return {}
    context = certificate.context
    return {"ssl_context_factory": lambda _config, _default: context}
