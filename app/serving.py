"""Running uvicorn servers for `scangate serve`: the REST API and, when enabled, the grant
guard's webhook listener (app/guard/server.py), in one process and one event loop, each with
its own port and optionally its own certificate (reloaded when its files change,
app/tls_files.py).

The servers share signal handling here (uvicorn's own handlers belong to one server):
SIGTERM/SIGINT stop all of them, and when one stops for another reason (its port is taken,
say), the others stop too, so Kubernetes restarts a pod that is only half serving. SIGHUP
reloads the configuration (`on_hangup`: app/reload) for every server at once, since they share
it; without a handler it would end the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

import uvicorn

from app.tls_files import ReloadingCertificate


class SharedSignalsServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # run_servers installs one handler for all servers.
        yield


# A background job run while the servers serve (a file watcher), cancelled when they stop.
BackgroundJob = Callable[[], Coroutine[Any, Any, None]]


def serve_all(
    configs: Sequence[uvicorn.Config],
    certificates: Sequence[ReloadingCertificate],
    *,
    on_hangup: Callable[[], None] | None = None,
    background: Sequence[BackgroundJob] = (),
) -> None:
    servers = [SharedSignalsServer(config) for config in configs]
    # The event loop uvicorn itself would pick (uvloop where installed), as `uvicorn.run` does.
    with asyncio.Runner(loop_factory=configs[0].get_loop_factory()) as runner:
        runner.run(run_servers(servers, certificates, on_hangup=on_hangup, background=background))


async def run_servers(
    servers: Sequence[uvicorn.Server],
    certificates: Sequence[ReloadingCertificate],
    *,
    on_hangup: Callable[[], None] | None = None,
    background: Sequence[BackgroundJob] = (),
) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    handled = [signal.SIGINT, signal.SIGTERM]
    for sig in handled:
        loop.add_signal_handler(sig, stop)
    if on_hangup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
        handled.append(signal.SIGHUP)
    watchers = [asyncio.create_task(c.watch()) for c in certificates]
    watchers += [asyncio.create_task(job()) for job in background]
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
        for sig in handled:
            loop.remove_signal_handler(sig)


def tls_options(certificate: ReloadingCertificate | None) -> dict[str, object]:
    """uvicorn.Config keyword arguments serving `certificate` (none: plain HTTP)."""
    if certificate is None:
        return {}
    context = certificate.context
    return {"ssl_context_factory": lambda _config, _default: context}
