"""The cluster connection settings a kubeconfig can carry, honoured by scangate's own transport
(`app/kube/wire.py`) as the official client's urllib3 pool honoured them: tls-server-name,
insecure-skip-tls-verify and proxy-url. Against kubesim over TLS, through a real proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.kube.clusters import ClusterClient
from app.kube.errors import KubeError, KubeUnavailable
from tests.kube.conftest import cluster_client

pytestmark = pytest.mark.anyio


def variant(kubesim_tls: Any, path: Path, **cluster: Any) -> Path:
    """kubesim's admin kubeconfig with these settings added to (None: removed from) its
    cluster entry."""
    document = yaml.safe_load(Path(kubesim_tls.admin_kubeconfig).read_text())
    entry = document["clusters"][0]["cluster"]
    for key, value in cluster.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    path.write_text(yaml.safe_dump(document))
    return path


@contextlib.asynccontextmanager
async def client_for(config: Path) -> AsyncIterator[ClusterClient]:
    cluster = cluster_client(config)
    try:
        yield cluster
    finally:
        await cluster.aclose()


async def test_tls_server_name_is_the_name_the_certificate_must_carry(
    kubesim_tls: Any, tmp_path: Path
) -> None:
    # The server is an IP address; the certificate also names kubernetes.default.svc.
    good = variant(kubesim_tls, tmp_path / "good", **{"tls-server-name": "kubernetes.default.svc"})
    async with client_for(good) as cluster:
        await cluster.ping()

    wrong = variant(kubesim_tls, tmp_path / "wrong", **{"tls-server-name": "elsewhere.example"})
    async with client_for(wrong) as cluster:
        with pytest.raises(KubeUnavailable, match="certificate verification failed"):
            await cluster.ping()


async def test_insecure_skip_tls_verify_connects_without_a_ca(
    kubesim_tls: Any, tmp_path: Path
) -> None:
    config = variant(
        kubesim_tls,
        tmp_path / "insecure",
        **{"certificate-authority-data": None, "insecure-skip-tls-verify": True},
    )
    async with client_for(config) as cluster:
        assert await cluster.namespace_exists("payments")

    # Without the CA and without the setting, the certificate does not verify.
    strict = variant(kubesim_tls, tmp_path / "strict", **{"certificate-authority-data": None})
    async with client_for(strict) as cluster:
        with pytest.raises(KubeUnavailable, match="certificate verification failed"):
            await cluster.ping()


class ConnectProxy:
    """A minimal HTTP proxy that only tunnels (CONNECT), recording where to."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def test_requests_go_through_the_kubeconfigs_proxy(kubesim_tls: Any, tmp_path: Path) -> None:
    async with ConnectProxy() as proxy:
        config = variant(kubesim_tls, tmp_path / "proxied", **{"proxy-url": proxy.url})
        async with client_for(config) as cluster:
            assert await cluster.namespace_exists("payments")
            assert [p.name for p in await cluster.get_pods("payments", ["web-0"])] == ["web-0"]
    api_server = kubesim_tls.url.removeprefix("https://")
    assert proxy.tunnels  # every request went through it, to the API server
    assert set(proxy.tunnels) == {api_server}


def test_a_socks_proxy_is_refused_when_the_cluster_is_configured(
    kubesim_tls: Any, tmp_path: Path
) -> None:
    config = variant(kubesim_tls, tmp_path / "socks", **{"proxy-url": "socks5://127.0.0.1:1080"})
    with pytest.raises(KubeError, match="SOCKS proxies are not supported"):
        cluster_client(config)
