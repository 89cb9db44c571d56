"""A minimal HTTP/1.1 client over keep-alive connections, for driving scangate.

The benchmark shares a small machine with the server it measures, so its client must cost as
little as possible: httpx spends about 1 ms of CPU per request here, as much as scangate's own
framework work, which would both slow the server (CPU taken from it) and inflate every latency.
This client writes a request and parses `Content-Length` or chunked responses, nothing more.
It is a real client on a real socket: requests go through the kernel's TCP stack to uvicorn
(over TLS for an https:// URL, as kube-apiserver reaches the grant guard).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class HttpError(RuntimeError):
    pass


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> HttpResponse:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            raise HttpError("response without Content-Length or chunked encoding")
        if headers.get("connection", "").lower() == "close":
            self.close()
        return HttpResponse(status, body)

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(chunk[:-2])

    @property
    def usable(self) -> bool:
        # uvicorn closes keep-alive connections idle for 5 s: their EOF is already read.
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class HttpClient:
    """Up to `connections` keep-alive connections to one server, each carrying one request at
    a time; a caller waits for a free connection (or opens one while under the limit)."""

    def __init__(
        self,
        base_url: str,
        *,
        connections: int,
        headers: dict[str, str],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        expected = "https" if tls is not None else "http"
        if parts.scheme != expected or parts.hostname is None:
            raise ValueError(f"only {expected}:// URLs are supported here, not {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if tls is not None else 80)
        self._tls = tls
        self._limit = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._fixed_headers = f"Host: {self._host}:{self._port}\r\n{extra}"

    async def request(self, method: str, path: str, body: Any = None) -> HttpResponse:
        """`body` is sent as JSON; bytes are sent as they are (JSON encoded in advance)."""
        if body is None or isinstance(body, bytes):
            payload = body or b""
        else:
            payload = json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed_headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        elif method != "GET":
            head += "Content-Length: 0\r\n"
        request = (head + "\r\n").encode("latin-1") + payload
        async with self._limit:
            connection, reused = await self._checkout()
            try:
                response = await connection.exchange(request)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                connection.close()
                if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
                # The server closed the idle connection as the request went out (it never
                # read it): the one case a client may safely send again.
                connection, _ = await self._checkout(fresh=True)
                response = await connection.exchange(request)
            except BaseException:
                connection.close()
                raise
            if connection.usable:
                self._idle.append(connection)
            return response

    async def _checkout(self, *, fresh: bool = False) -> tuple[_Connection, bool]:
        while self._idle and not fresh:
            connection = self._idle.pop()
            if connection.usable:
                return connection, True
            connection.close()
        reader, writer = await asyncio.open_connection(self._host, self._port, ssl=self._tls)
        return _Connection(reader, writer), False

    async def aclose(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
