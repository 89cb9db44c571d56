"""A stand-in for scangate's approval endpoints until the service has them: a real HTTP server
on a loopback socket (stdlib `http.server`, in a thread) answering as the approvals contract
says the service will (`tests/support/approval_contract.py`), and `scangate` run against it as
a user runs it (a separate process with `SCANGATE_URL` / `SCANGATE_TOKEN`).

Once the service has these endpoints (`/approve` among its routes), the tests using this should
move to the real service; tests/cli/test_approvals_e2e.py already runs the same paths there.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.approval_contract import ApprovalContract, Problem, RecordedRequest
from tests.support.cli_process import ScangateCli
from tests.support.polling import wait_for

# Principals by API key name: `ci` requests, `alice` and `bob` approve, `carol` is neither.
KEY_NAMES = ("ci", "alice", "bob", "carol", "root")


@dataclass
class FakeApprovalService(ApprovalContract, ScangateCli):
    """The stand-in at `url`, and `scangate` run against it."""

    url: str = ""

    def requested_grant_id(self) -> str:
        """The id of the one grant asked for, once the client has asked."""
        assert wait_for(lambda: self.grants, within=30), "no grant was requested"
        return str(self.only_grant()["id"])

    def wait_until_polled(self, grant_id: str, times: int = 1) -> None:
        """Returns once the client has polled the grant `times` times (in its waiting loop)."""
        polled = wait_for(lambda: len(self.polls_of(grant_id)) >= times, within=60)
        assert polled, f"the client polled {len(self.polls_of(grant_id))} times, not {times}"

    def approve_as(self, who: str, grant_id: str) -> str:
        """`scangate grant approve` as `who`; what it printed."""
        result = self.scangate("grant", "approve", grant_id, "--reason", "looked at it", who=who)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test's output is for its own failures

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        principal = next((f"apikey:{n}" for n, k in fake.keys.items() if k == token), None)
        headers: dict[str, str] = {}
        if method == "GET" and split.path.count("/") == 3 and fake.take_dropped_poll():
            self.close_connection = True  # as a restarting server or a dying proxy does
            with fake.lock:
                fake.requests.append(
                    RecordedRequest(time.monotonic(), method, split.path, principal, 0)
                )
            return
        try:
            if principal is None:
                raise Problem(
                    401,
                    "Unauthorized",
                    "authentication required",
                    headers={"WWW-Authenticate": 'Bearer realm="scangate"'},
                )
            if split.path.endswith("/kubeconfig") and method == "GET":
                text = fake.kubeconfig(principal, split.path.split("/")[3])
                self._send(200, text.encode(), "application/yaml", {}, method, principal)
                return
            body = json.loads(raw) if raw else None
            status, payload, headers = fake.handle(method, split.path, query, principal, body)
            content_type = "application/json"
        except Problem as problem:
            headers = problem.extra.pop("headers", {})
            status, payload = problem.status, problem.body()
            content_type = "application/problem+json"
        self._send(status, json.dumps(payload).encode(), content_type, headers, method, principal)

    def _send(
        self,
        status: int,
        data: bytes,
        content_type: str,
        headers: dict[str, str],
        method: str,
        principal: str | None,
    ) -> None:
        with self.server.fake.lock:
            self.server.fake.requests.append(
                RecordedRequest(
                    time.monotonic(), method, urlsplit(self.path).path, principal, status
                )
            )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeApprovalService) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextlib.contextmanager
def fake_approval_service() -> Iterator[FakeApprovalService]:
    """The stand-in served on 127.0.0.1 until the block ends."""
    fake = FakeApprovalService(keys={name: "sg_" + secrets.token_urlsafe(32) for name in KEY_NAMES})
    server = _Server(fake)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
