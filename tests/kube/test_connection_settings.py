"""The cluster connection settings a kubeconfig can carry, honoured by scangate's client layer
(the official client's `kubernetes.aio`, loaded by `app/kube/client_config.py`): tls-server-name,
insecure-skip-tls-verify, proxy-url and client certificates. Against kubesim over TLS, through
a real proxy, and a TLS server that requires a client certificate."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.kube.clusters import ClusterClient
from app.kube.errors import KubeError, KubeUnavailable
from kubesim import tls
from kubesim.pytest_plugin import KubesimHandle
from tests.kube.kubeconfig_files import self_signed_ca
from tests.support.kube import cluster_client

pytestmark = pytest.mark.anyio


def variant(kubesim_tls: KubesimHandle, path: Path, **cluster: Any) -> Path:
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
    cluster = await cluster_client(config)
    try:
        yield cluster
    finally:
        await cluster.aclose()


async def test_tls_server_name_is_the_name_the_certificate_must_carry(
    kubesim_tls: KubesimHandle, tmp_path: Path
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
    kubesim_tls: KubesimHandle, tmp_path: Path
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


class LocalServer:
    """A server on a free loopback port for the test's duration; `url` says where. Subclasses
    answer connections in `_serve`."""

    def __init__(self, tls_context: ssl.SSLContext | None = None) -> None:
        self.url = ""
        self._tls_context = tls_context
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self._tls_context
        )
        scheme = "https" if self._tls_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class ConnectProxy(LocalServer):
    """A minimal HTTP proxy that only tunnels (CONNECT), recording where to."""

    def __init__(self) -> None:
        super().__init__()
        self.tunnels: list[str] = []

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


async def test_requests_go_through_the_kubeconfigs_proxy(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    async with ConnectProxy() as proxy:
        config = variant(kubesim_tls, tmp_path / "proxied", **{"proxy-url": proxy.url})
        async with client_for(config) as cluster:
            assert await cluster.namespace_exists("payments")
            assert [p.name for p in await cluster.get_pods("payments", ["web-0"])] == ["web-0"]
    api_server = kubesim_tls.url.removeprefix("https://")
    assert proxy.tunnels  # every request went through it, to the API server
    assert set(proxy.tunnels) == {api_server}


async def test_requests_go_through_the_environments_proxy_unless_no_proxy_names_the_server(
    kubesim_tls: KubesimHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Path(kubesim_tls.admin_kubeconfig)
    async with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "kubernetes.example")
        async with client_for(config) as cluster:
            assert await cluster.namespace_exists("payments")
        assert set(proxy.tunnels) == {kubesim_tls.url.removeprefix("https://")}

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with client_for(config) as cluster:
            assert await cluster.namespace_exists("payments")
        assert len(proxy.tunnels) == 1  # the second client went straight to the server


async def test_a_netrc_entry_for_the_api_server_does_not_replace_the_bearer_token(
    kubesim_tls: KubesimHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiohttp with `trust_env` would add the entry as basic auth and refuse the request for
    # carrying an Authorization header too; scangate's session does not consult the environment
    # per request (only the proxy variables, once, when the cluster is loaded).
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password elsewhere\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    async with client_for(Path(kubesim_tls.admin_kubeconfig)) as cluster:
        assert await cluster.namespace_exists("payments")
    assert kubesim_tls.requests()[-1]["user"] == "kubesim-admin"


async def test_a_socks_proxy_is_refused_when_the_cluster_is_configured(
    kubesim_tls: KubesimHandle, tmp_path: Path
) -> None:
    config = variant(kubesim_tls, tmp_path / "socks", **{"proxy-url": "socks5://127.0.0.1:1080"})
    with pytest.raises(KubeError, match="SOCKS proxies are not supported"):
        await cluster_client(config)


def _exec_plugin_kubeconfig(
    kubesim: KubesimHandle, directory: Path, *, token: str, expires_in: dt.timedelta
) -> tuple[Path, Path]:
    """kubesim's admin kubeconfig whose user gets `token` from an exec plugin (a Python script
    that records each run in a file); returns the kubeconfig and the record of runs."""
    runs = directory / "runs"
    expiry = (dt.datetime.now(dt.UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": expiry},
    }
    plugin = directory / "plugin.py"
    plugin.write_text(
        "import json, pathlib\n"
        f"with pathlib.Path({str(runs)!r}).open('a') as runs: runs.write('run\\n')\n"
        f"print(json.dumps({credential!r}))\n"
    )
    document = yaml.safe_load(Path(kubesim.admin_kubeconfig).read_text())
    document["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin)],
        }
    }
    path = directory / "exec.kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path, runs


async def test_an_exec_plugins_token_authenticates_and_is_renewed_once_expired(
    kubesim: KubesimHandle, tmp_path: Path
) -> None:
    # The client treats a token as expired 5 minutes before its expirationTimestamp: one that
    # expires in a minute is renewed before every request, one that lasts an hour is not.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    config, runs = _exec_plugin_kubeconfig(
        kubesim, fresh, token=kubesim.admin_token, expires_in=dt.timedelta(hours=1)
    )
    async with client_for(config) as cluster:
        await cluster.ping()
        assert await cluster.namespace_exists("payments")
    assert runs.read_text().splitlines() == ["run"]  # once, when the cluster was loaded

    expiring = tmp_path / "expiring"
    expiring.mkdir()
    config, runs = _exec_plugin_kubeconfig(
        kubesim, expiring, token=kubesim.admin_token, expires_in=dt.timedelta(minutes=1)
    )
    async with client_for(config) as cluster:
        await cluster.ping()
        assert await cluster.namespace_exists("payments")
    assert len(runs.read_text().splitlines()) == 3  # at loading, then before each request
    assert {r["user"] for r in kubesim.requests()} == {"kubesim-admin"}


def _client_certificate(common_name: str) -> tuple[bytes, bytes, bytes]:
    """(CA certificate, client certificate, client key) as PEM, for TLS client authentication."""
    ca_key, ca = self_signed_ca("clients-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = serialization.Encoding.PEM
    return ca.public_bytes(pem), cert.public_bytes(pem), key_pem


class ClientCertificateServer(LocalServer):
    """An HTTPS endpoint that requires a client certificate (as kind's API server does for its
    admin user) and answers every request with an empty ServiceAccountList."""

    def __init__(self, directory: Path, clients_ca: bytes) -> None:
        ca, cert, key = tls.generate("127.0.0.1")
        self.ca = ca
        (directory / "server.crt").write_bytes(cert)
        (directory / "server.key").write_bytes(key)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=clients_ca.decode())
        context.load_cert_chain(directory / "server.crt", directory / "server.key")
        context.verify_mode = ssl.CERT_REQUIRED
        super().__init__(context)
        self.clients: list[str] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            subject = dict(pair[0] for pair in writer.get_extra_info("peercert")["subject"])
            self.clients.append(subject["commonName"])
            body = b'{"kind": "ServiceAccountList", "apiVersion": "v1", "items": []}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()


def _kubeconfig(path: Path, server: str, ca: bytes, user: dict[str, str]) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_a_client_certificate_from_the_kubeconfig_authenticates(tmp_path: Path) -> None:
    clients_ca, cert, key = _client_certificate("scangate-admin")
    async with ClientCertificateServer(tmp_path, clients_ca) as server:
        user = {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}
        config = _kubeconfig(tmp_path / "cert.kubeconfig", server.url, server.ca, user)
        async with client_for(config) as cluster:
            await cluster.ping()
        assert server.clients == ["scangate-admin"]

        without = _kubeconfig(tmp_path / "none.kubeconfig", server.url, server.ca, {"token": "t"})
        async with client_for(without) as cluster:
            with pytest.raises(KubeUnavailable):
                await cluster.ping()
        assert server.clients == ["scangate-admin"]
