"""A local OIDC issuer for tests: keys generated here, discovery and JWKS served on loopback.

A real HTTP server (http.server in a thread), so scangate's verifier goes through its whole
path: discovery, JWKS download, caching and refetching on rotation. Tests mint tokens with any
claims, any key (published or not) and any header, and count the requests the issuer received.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

KeyKind = Literal["RSA", "EC"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    kind: KeyKind
    private_key: Any

    @property
    def algorithm(self) -> str:
        return "RS256" if self.kind == "RSA" else "ES256"

    def public_jwk(self) -> dict[str, Any]:
        algorithm = (
            jwt.algorithms.RSAAlgorithm if self.kind == "RSA" else jwt.algorithms.ECAlgorithm
        )
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg=self.algorithm)
        return jwk

    def public_pem(self) -> bytes:
        return bytes(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def new_key(kind: KeyKind = "RSA", kid: str | None = None) -> SigningKey:
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "RSA"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return SigningKey(kid or f"{kind.lower()}-{uuid.uuid4().hex[:8]}", kind, private)


@dataclass
class LocalIssuer:
    """The issuer's state; `url` is its issuer identifier (http on loopback)."""

    url: str = ""
    audience: str = "scangate"
    published: list[SigningKey] = field(default_factory=list)
    discovery_issuer: str | None = None  # what discovery claims to be (default: url)
    requests: list[str] = field(default_factory=list)
    available: bool = True  # False -> every request answers 503

    @property
    def jwks_requests(self) -> int:
        return self.requests.count("/jwks")

    def publish(self, *keys: SigningKey) -> None:
        """Replace the published JWKS (a rotation when the old keys are left out)."""
        self.published = list(keys)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """GitHub-Actions-like claims, valid now; None values delete a claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": self.audience,
            "sub": "repo:acme/payments:ref:refs/heads/main",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "repository": "acme/payments",
            "ref": "refs/heads/main",
            "ref_protected": "true",
            "environment": "production",
            "run_id": "4242",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        key: SigningKey | None = None,
        *,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        key = key or self.published[0]
        return jwt.encode(
            self.claims(**claims),
            key.private_key,
            algorithm=key.algorithm,
            headers={"kid": key.kid, **(headers or {})},
        )

    def unsigned_token(self, **claims: Any) -> str:
        """alg "none": no signature at all."""
        header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        return f"{header}.{b64url(json.dumps(self.claims(**claims)).encode())}."

    def hs256_token_with_public_key(self, key: SigningKey, **claims: Any) -> str:
        """The classic key-confusion forgery: HMAC with the issuer's *public* key as secret."""
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
        payload = b64url(json.dumps(self.claims(**claims)).encode())
        signature = hmac.new(key.public_pem(), f"{header}.{payload}".encode(), hashlib.sha256)
        return f"{header}.{payload}.{b64url(signature.digest())}"

    # -- HTTP ---------------------------------------------------------------------------------

    def document(self, path: str) -> dict[str, Any] | None:
        if path == "/.well-known/openid-configuration":
            return {
                "issuer": self.discovery_issuer or self.url,
                "jwks_uri": f"{self.url}/jwks",
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
            }
        if path == "/jwks":
            return {"keys": [k.public_jwk() for k in self.published]}
        return None


def _handler(issuer: LocalIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer.requests.append(self.path)
            document = issuer.document(self.path) if issuer.available else None
            status = 200 if document is not None else (503 if not issuer.available else 404)
            body = json.dumps(document or {"error": "unavailable"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@contextlib.contextmanager
def running_issuer(*keys: SigningKey) -> Iterator[LocalIssuer]:
    """An issuer on 127.0.0.1 (random port) publishing `keys` (one new RSA key by default)."""
    issuer = LocalIssuer()
    issuer.publish(*(keys or (new_key("RSA"),)))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(issuer))
    server.daemon_threads = True
    issuer.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="oidc-issuer", daemon=True
    )
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
