"""A real HTTPS admission webhook for kubesim's admission tests: it records every
AdmissionReview it receives and answers with what the test tells it to.

It runs in a thread of the test process with a certificate from its own CA, so a
ValidatingWebhookConfiguration can name it by URL (or by Service, with kubesim's
--service-address) and pin that CA in `caBundle`. The functions at the end register it and
make the requests the admission tests send through the official client.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from kubesim.tls import generate

Decide = Callable[[dict[str, Any]], dict[str, Any]]


def allow(request: dict[str, Any]) -> dict[str, Any]:
    return {"allowed": True}


@dataclass
class Received:
    path: str
    host: str
    user_agent: str
    review: dict[str, Any]

    @property
    def request(self) -> dict[str, Any]:
        result: dict[str, Any] = self.review["request"]
        return result


@dataclass
class WebhookServer:
    directory: Path
    server_name: str = "localhost"
    decide: Decide = allow
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    ca_pem: bytes = b""
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/validate"

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca_pem).decode()

    def start(self) -> None:
        ca_pem, cert_pem, key_pem = generate(self.server_name)
        self.ca_pem = ca_pem
        (self.directory / "webhook.crt").write_bytes(cert_pem)
        (self.directory / "webhook.key").write_bytes(key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.directory / "webhook.crt", self.directory / "webhook.key")
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        # A short poll interval: stop() waits for it.
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def requests(self) -> list[dict[str, Any]]:
        return [r.request for r in self.received]


def _handler(webhook: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            headers = self.headers
            webhook.received.append(
                Received(self.path, headers["Host"], headers["User-Agent"], review)
            )
            if webhook.delay_seconds:
                time.sleep(webhook.delay_seconds)
            response = {"uid": review["request"]["uid"], **webhook.decide(review["request"])}
            body = json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": response,
                }
            ).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # the caller gave up (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


HOOK = "guard.scangate.example.com"
POD_CREATE = {
    "apiGroups": [""],
    "apiVersions": ["v1"],
    "operations": ["CREATE"],
    "resources": ["pods"],
}


def webhook_configuration(
    webhook: WebhookServer, name: str = "guard", **hook: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": HOOK,
        "clientConfig": {"url": webhook.url, "caBundle": webhook.ca_bundle},
        "rules": [POD_CREATE],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    spec.update(hook)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [spec],
    }


def register(handle: KubesimHandle, body: dict[str, Any]) -> Any:
    with handle.admin_client() as api:
        return client.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(body)


def pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
    }


def create_pod(handle: KubesimHandle, body: dict[str, Any], **kwargs: Any) -> Any:
    with handle.admin_client() as api:
        return client.CoreV1Api(api).create_namespaced_pod("payments", body, **kwargs)


def refusal(handle: KubesimHandle, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ApiException) as raised:
        create_pod(handle, body)
    status: dict[str, Any] = json.loads(raised.value.body)
    assert status["code"] == raised.value.status
    return status


def pod_exists(handle: KubesimHandle, name: str) -> bool:
    with handle.admin_client() as api:
        names = [
            p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod("payments").items
        ]
    return name in names
