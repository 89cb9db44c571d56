"""Sends one cluster's API requests from the event loop (aiohttp); the official client builds
them and reads the answers.

Why not the client's own (synchronous, urllib3) HTTP: each call then needs a worker thread for
its whole round trip, and at 32 concurrent grants the threads handing the GIL to each other and
to the event loop cost more CPU than everything else a grant does. Measured on the benchmark's
cluster, the four calls of a grant cost ~2.0 ms of CPU through worker threads and ~0.9 ms here.

What the official client still does: loading the credentials (kubeconfig, or the in-cluster
service account), the request's URL and authentication (`ApiClient.param_serialize`, which also
runs the client's refresh hook, so a rotated service-account token or an expiring exec-plugin
token is picked up as before), decoding answers into its models (`ApiClient.deserialize`) and
errors into its `ApiException`. What this module does: TLS as the client's Configuration says
(CA, client certificate, `insecure-skip-tls-verify`, `tls-server-name`), the kubeconfig's
`proxy-url` (HTTP proxies; SOCKS is refused when the cluster is configured), pooled
connections and timeouts.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import is_socks_proxy_url, should_bypass_proxies

from app.kube.errors import KubeError
from app.kube.operations import Operation

# What the generated API methods authenticate with: the Configuration's bearer token (client
# certificates, when configured, are part of TLS).
_AUTH_SETTINGS: Final = ["BearerToken"]
_JSON: Final = "application/json"

# Connection-level failures worth another try: refused, reset, dropped mid-response, timeouts.
TRANSPORT_ERRORS: Final = (aiohttp.ClientError, ConnectionError, TimeoutError)
# A certificate that does not verify will not verify on the next try either.
CERTIFICATE_ERRORS: Final = (aiohttp.ClientConnectorCertificateError,)


@dataclass(frozen=True)
class ApiRequest:
    operation: Operation
    query: tuple[tuple[str, str | int], ...] = ()
    body: dict[str, Any] | None = None
    # The client model the answer decodes into ("V1Pod"); None: the answer is read and
    # dropped (creates and deletes), which spares the CPU of building models nobody reads.
    returns: str | None = None


@dataclass(frozen=True)
class _Answer:
    """An error answer, in the shape `ApiException` reads (status, reason, data, headers)."""

    status: int
    reason: str | None
    data: bytes
    headers: Any

    def getheaders(self) -> Any:
        return self.headers


class ApiWire:
    """The HTTP side of one cluster's ApiClient. Connections are pooled per event loop."""

    def __init__(self, api_client: client.ApiClient, *, max_connections: int) -> None:
        configuration = api_client.configuration
        self._api_client = api_client
        self._max_connections = max_connections
        # What every request to this cluster is sent with, beyond its own method, URL, headers
        # and body: TLS settings and the proxy.
        self._options: dict[str, Any] = {}
        if str(configuration.host).lower().startswith("https://"):
            self._options["ssl"] = _ssl_context(configuration)
            # urllib3 checks the certificate against `assert_hostname` when set; the closest
            # equivalent is verifying (and asking for) that name, as tls-server-name does.
            server_hostname = configuration.tls_server_name or configuration.assert_hostname
            if isinstance(server_hostname, str):
                self._options["server_hostname"] = server_hostname
        if uses_proxy(configuration):
            self._options["proxy"] = configuration.proxy
            self._options["proxy_headers"] = configuration.proxy_headers
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    async def send(self, request: ApiRequest, timeouts: tuple[float, float]) -> Any:
        """Send `request`; its decoded answer (None if `returns` is None).

        Raises `ApiException` for an answer other than 2xx, and aiohttp's (or the socket's)
        errors when the API server cannot be reached or the connection drops.
        """
        operation = request.operation
        method, url, headers, _, _ = self._api_client.param_serialize(
            operation.http_method,
            operation.path,
            query_params=list(request.query) or None,
            header_params={"Accept": _JSON},
            auth_settings=_AUTH_SETTINGS,
        )
        data = None
        if request.body is not None:
            headers["Content-Type"] = _JSON
            data = json.dumps(request.body).encode()
        connect, read = timeouts
        async with self._session_here().request(
            method,
            url,
            headers=headers,
            data=data,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read),
            **self._options,
        ) as response:
            body = await response.read()
        if not 200 <= response.status <= 299:
            answer = _Answer(response.status, response.reason, body, response.headers)
            # Raises the client's exception for the status (NotFoundException, ...).
            raise ApiException.from_response(
                http_resp=answer, body=body.decode("utf-8", "replace"), data=None
            )
        if request.returns is None:
            return None
        content_type = response.headers.get("Content-Type")
        return self._api_client.deserialize(
            body.decode(response.charset or "utf-8"), request.returns, content_type
        )

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                # The proxy comes from the client's Configuration (the kubeconfig's proxy-url,
                # or the environment as the client reads it), not from aiohttp's own lookup.
                trust_env=False,
            )
            self._session, self._session_loop = session, loop
        return session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def uses_proxy(configuration: client.Configuration) -> bool:
    """Whether requests to the API server go through the configured (or environment) proxy."""
    proxy = configuration.proxy
    return bool(proxy) and not should_bypass_proxies(
        configuration.host, configuration.no_proxy or ""
    )


def check_proxy(cluster: str, configuration: client.Configuration) -> None:
    if uses_proxy(configuration) and is_socks_proxy_url(configuration.proxy):  # type: ignore[no-untyped-call]
        raise KubeError(
            f'cluster "{cluster}": SOCKS proxies are not supported (proxy-url); use an HTTP proxy'
        )


def _ssl_context(configuration: client.Configuration) -> ssl.SSLContext:
    """TLS exactly as the client's urllib3 pool would do it from the same Configuration."""
    context = ssl.create_default_context(
        cafile=configuration.ssl_ca_cert or None, cadata=configuration.ca_cert_data or None
    )
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif configuration.assert_hostname is False:
        context.check_hostname = False
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context
