"""Running kubesim: bind, announce the URL, serve until SIGTERM.

The socket is bound before the server starts so that `--port 0` can report the port it got,
and the "kubesim listening on <url>" line is printed only once uvicorn accepts connections:
whoever waits for that line (the pytest plugin, scripts) can connect immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from kubesim.app import KubesimApp
from kubesim.cluster import Cluster, SimConfig
from kubesim.kubeconfig import token_kubeconfig, write_kubeconfig
from kubesim.tls import TlsMaterial, load_or_create


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False
    tls_dir: Path | None = None
    kubeconfig_path: Path | None = None


class _SpuriousHandshakeError(logging.Filter):
    """uvicorn's websockets-sansio protocol logs "returned without completing handshake" even
    after an app rejected an upgrade with a full HTTP response (the ASGI
    `websocket.http.response` extension, which is how kubesim refuses an exec or attach
    upgrade with a Status: 401, 403, 400...). The response is sent correctly; only that false
    alarm is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing handshake" not in record.getMessage()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Restarting on the same port (the fixture's "cluster down" tests) must not wait for
    # TIME_WAIT connections of the previous process.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # uvicorn writes a response's head and body separately; without TCP_NODELAY, Nagle holds
    # the body until the client's delayed ACK (~40 ms per request). Accepted sockets inherit it.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _url(scheme: str, host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{scheme}://{shown}:{port}"


async def _announce_when_started(server: uvicorn.Server, url: str) -> None:
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.01)
    print(f"kubesim listening on {url}", flush=True)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after a graceful shutdown (so the process dies of the
    signal); kubesim handles it itself and exits 0, which is what scripts and the fixture
    expect from "SIGTERM stops it"."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(server: uvicorn.Server, sock: socket.socket, url: str) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    announcer = asyncio.create_task(_announce_when_started(server, url))
    try:
        await server.serve(sockets=[sock])
    finally:
        announcer.cancel()


def run(config: SimConfig, options: ServerOptions) -> int:
    cluster = Cluster(config)
    sock = _bind(options.host, options.port)
    port = sock.getsockname()[1]
    tls: TlsMaterial | None = None
    if options.tls:
        tls_dir = options.tls_dir or Path(tempfile.mkdtemp(prefix="kubesim-tls-"))
        tls = load_or_create(tls_dir, options.host)
    url = _url("https" if tls else "http", options.host, port)
    if options.kubeconfig_path is not None:
        ca = tls.ca_cert_pem if tls else None
        write_kubeconfig(options.kubeconfig_path, token_kubeconfig(url, config.admin_tokens[0], ca))
    uvicorn_config = uvicorn.Config(
        KubesimApp(cluster),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        ssl_certfile=str(tls.cert_file) if tls else None,
        ssl_keyfile=str(tls.key_file) if tls else None,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
        server_header=False,
        date_header=True,
    )
    server = _Server(uvicorn_config)
    logging.getLogger("uvicorn.error").addFilter(_SpuriousHandshakeError())
    try:
        asyncio.run(_serve(server, sock, url))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    sys.stdout.flush()
    return 0
