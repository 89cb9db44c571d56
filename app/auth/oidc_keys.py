"""The signing keys of one OIDC issuer: discovery, JWKS fetching and caching.

Keys are found through the issuer's `/.well-known/openid-configuration` (its `jwks_uri`) unless
`jwks_url` is configured, fetched with bounded timeouts and a bounded body size, and cached. The
cache is refreshed when it is older than `max_age`, and early when a token names a `kid` the
cache does not hold (the issuer rotated its keys) - but at most once per `min_refresh_interval`,
so a stream of tokens with made-up `kid`s cannot turn scangate into a traffic amplifier against
the issuer. Every fetch uses a short-lived HTTP client: fetches are rare, and nothing is left to
close at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from app.errors import UpstreamUnavailable
from app.settings_sections import is_trusted_oidc_url

logger = logging.getLogger(__name__)

# Key types that sign asymmetrically. An `oct` (shared secret) key in a JWKS would be a
# misconfiguration at best, and accepting it is how HS256-with-the-public-key attacks work.
ASYMMETRIC_KEY_TYPES: Final = frozenset({"RSA", "EC", "OKP"})
MAX_DOCUMENT_BYTES: Final = 512 * 1024  # real discovery documents and JWKS are a few KiB


class OidcIssuerUnavailable(UpstreamUnavailable):
    """The issuer's keys could not be fetched, so no token of it can be verified right now."""

    title = "OIDC Issuer Unavailable"
    type_slug = "oidc-issuer-unavailable"


class _FetchError(Exception):
    """A discovery or JWKS fetch failed; the message is safe to log (no bodies)."""


@dataclass(frozen=True)
class FetchPolicy:
    """Bounds on talking to an issuer. Defaults suit production; tests shorten them."""

    timeout_seconds: float = 5.0
    max_age_seconds: float = 3600.0
    min_refresh_interval_seconds: float = 30.0
    retry_after_seconds: float = 10.0


class IssuerKeys:
    """The cached JWKS of one issuer, keyed by `kid` (None for a key without one)."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        policy: FetchPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self._policy = policy or FetchPolicy()
        self._clock = clock
        self._keys: dict[str | None, dict[str, Any]] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetch_count = 0  # successful fetches, for metrics and tests

    async def key_for(self, kid: str | None) -> dict[str, Any] | None:
        """The JWK for `kid`, refreshing the cache when it is stale or lacks `kid`.

        None when the issuer does not publish such a key. Raises `OidcIssuerUnavailable` when
        the keys cannot be fetched and the cache cannot answer.
        """
        if self._is_stale() or self._lookup(kid) is None:
            await self._refresh()
        if self._fetched_at is None:
            raise OidcIssuerUnavailable(
                "cannot verify the ID token: the OIDC issuer's signing keys are unavailable",
                retry_after=self._policy.retry_after_seconds,
            )
        return self._lookup(kid)

    def _lookup(self, kid: str | None) -> dict[str, Any] | None:
        if kid is None and None not in self._keys and len(self._keys) == 1:
            # An issuer with a single key may omit `kid` from tokens; with several, a token
            # must say which one it used.
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    def _is_stale(self) -> bool:
        return (
            self._fetched_at is None
            or self._clock() - self._fetched_at >= self._policy.max_age_seconds
        )

    async def _refresh(self) -> None:
        attempted = self._attempted_at
        async with self._lock:
            if self._attempted_at != attempted:
                return  # another request refreshed while this one waited for the lock
            now = self._clock()
            if (
                self._attempted_at is not None
                and now - self._attempted_at < self._policy.min_refresh_interval_seconds
            ):
                # Rate limit: neither made-up kids nor a down issuer cause a fetch per request.
                return
            self._attempted_at = now
            try:
                async with asyncio.timeout(self._policy.timeout_seconds * 2):
                    keys = await self._fetch_keys()
            except (_FetchError, TimeoutError) as exc:
                # Cached keys (if any) stay in use: an issuer outage must not lock out tokens
                # signed with keys we already know.
                logger.warning("OIDC issuer %s: cannot fetch signing keys: %s", self.issuer, exc)
                return
            self._keys, self._fetched_at = keys, self._clock()
            self.fetch_count += 1
            logger.info("OIDC issuer %s: %d signing key(s) loaded", self.issuer, len(keys))

    async def _fetch_keys(self) -> dict[str | None, dict[str, Any]]:
        timeout = httpx.Timeout(self._policy.timeout_seconds)
        # Redirects are not followed: a redirect could lead from https to anywhere.
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            jwks_url = self._jwks_url or await self._discover_jwks_url(http)
            document = await _get_json(http, jwks_url)
        return _signing_keys(document)

    async def _discover_jwks_url(self, http: httpx.AsyncClient) -> str:
        document = await _get_json(http, f"{self.issuer}/.well-known/openid-configuration")
        # OpenID Connect Discovery 1.0 section 4.3: the document must name the issuer it was
        # fetched for, otherwise one issuer could vouch for another's tokens.
        if str(document.get("issuer", "")).rstrip("/") != self.issuer:
            raise _FetchError("the discovery document names a different issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not is_trusted_oidc_url(jwks_uri):
            raise _FetchError("the discovery document has no https jwks_uri")
        return jwks_uri


async def _get_json(http: httpx.AsyncClient, url: str) -> Mapping[str, Any]:
    try:
        async with http.stream("GET", url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise _FetchError(f"GET {url} answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise _FetchError(f"GET {url}: document larger than {MAX_DOCUMENT_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise _FetchError(f"GET {url} failed: {type(exc).__name__}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise _FetchError(f"GET {url}: not JSON") from None
    if not isinstance(document, dict):
        raise _FetchError(f"GET {url}: not a JSON object")
    return document


def _signing_keys(document: Mapping[str, Any]) -> dict[str | None, dict[str, Any]]:
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise _FetchError("the JWKS has no 'keys' list")
    found: dict[str | None, dict[str, Any]] = {}
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ASYMMETRIC_KEY_TYPES:
            continue
        if key.get("use", "sig") != "sig":
            continue  # encryption keys never verify signatures
        kid = key.get("kid")
        found[kid if isinstance(kid, str) else None] = key
    return found
