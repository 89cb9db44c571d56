"""A real HTTP receiver for notifications, in a thread: it checks each POST's signature as the
README tells receivers to, keeps what it received, de-duplicates by event id as a receiver
should, and can be told to refuse, to hang, or to be down (not listening at all)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "s3cret-for-tests-0123456789abcdef"


def verify_signature(secret: bytes, header: str, body: bytes, *, tolerance: float = 300) -> bool:
    """The README's recipe: recompute HMAC-SHA256 over "<t>.<body>", compare in constant time,
    and refuse old timestamps (replays)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None

    @property
    def document(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value

    @property
    def event_id(self) -> str:
        return self.headers["scangate-event-id"]


@dataclass
class Receiver:
    secret: bytes | None = None
    # Per request: an HTTP status to answer instead of 204 (None: accept).
    refuse: Callable[[Received], int | None] = lambda _r: None
    # While set, requests hang until it is cleared (or `hang_limit` seconds).
    hanging: threading.Event = field(default_factory=threading.Event)
    hang_limit: float = 60.0
    delay: float = 0.0
    port: int = 0
    received: list[Received] = field(default_factory=list)  # accepted, in arrival order
    attempts: int = 0
    hung: int = 0
    accepted_ids: list[str] = field(default_factory=list)  # de-duplicated
    duplicates: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        if not self.port:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self.port = sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._handle(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        signature = headers.get("scangate-signature")
        signature_ok = (
            verify_signature(self.secret, signature, body)
            if self.secret is not None and signature is not None
            else None
        )
        item = Received(headers, body, signature_ok)
        with self._lock:
            self.attempts += 1
        if self.hanging.is_set():
            with self._lock:
                self.hung += 1
            deadline = time.monotonic() + self.hang_limit
            while self.hanging.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.delay:
            time.sleep(self.delay)
        status = self.refuse(item)
        if status is None and self.secret is not None and not signature_ok:
            status = 401
        if status is None:
            with self._lock:
                self.received.append(item)
                if item.event_id in self.accepted_ids:
                    self.duplicates += 1
                else:
                    self.accepted_ids.append(item.event_id)
            status = 204
        try:
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        except OSError:
            pass  # the sender gave up waiting

    def documents(self, event: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self.received)
        docs = [r.document for r in items]
        if event is None:
            return docs
        return [d for d in docs if d.get("type", "").endswith("." + event)]
