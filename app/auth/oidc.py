"""OIDC principals: CI ID tokens (GitHub Actions, GitLab CI...) verified against their issuer.

A bearer credential shaped like a JWT is this verifier's kind. It is accepted only when:
- its header names an asymmetric algorithm (`none` and the HMAC family are refused before any
  key is looked at: with HS256, a verifier that accepts "the issuer's key" as a shared secret
  lets anyone who has the *public* key sign tokens);
- its `iss` is a configured issuer, and the signature verifies with that issuer's published key
  for the token's `kid` (see `oidc_keys.py` for discovery, caching and rotation);
- `aud` contains a configured audience, `exp` is in the future, `nbf` and `iat` are not, each
  with `LEEWAY_SECONDS` of clock skew allowed, and `sub` is present.

The principal is `oidc:<issuer>#<sub>` with every verified claim attached, for policies'
`claims:` maps and the audit trail. Tokens are never logged or put in error details; rejection
reasons are (they say what was wrong, never what the token contained).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import jwt

from app.auth.oidc_keys import FetchPolicy, IssuerKeys, OidcIssuerUnavailable
from app.auth.principals import Principal
from app.errors import Unauthorized
from app.settings_sections import OidcConfig

logger = logging.getLogger(__name__)

# JWS algorithms with a public verification key. Deliberately no `none`, no HS*.
ACCEPTED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# CI runners' clocks are NTP-synchronised; half a minute covers real skew without noticeably
# stretching a token's life.
LEEWAY_SECONDS: Final = 30
REQUIRED_CLAIMS: Final = ("iss", "sub", "aud", "exp", "iat")
# Where an issuer's keys come from: its identifier and the configured JWKS URL (None:
# discovery).
KeySource = tuple[str, str | None]
# Three base64url segments; the signature may be empty (alg none), which we still want to
# reject as an OIDC token rather than as "unknown credential".
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")

__all__ = ["ACCEPTED_ALGORITHMS", "LEEWAY_SECONDS", "OidcIssuerUnavailable", "OidcVerifier"]


class _Rejected(Exception):
    """A token that is OIDC-shaped but not acceptable; the message is safe to show."""


class _TrustedIssuer:
    def __init__(self, issuer: str, audiences: list[str], keys: IssuerKeys) -> None:
        self.issuer = issuer
        self.audiences = audiences
        self.keys = keys


class OidcVerifier:
    """Verifies ID tokens of the configured issuers (a `CredentialVerifier`)."""

    def __init__(
        self,
        configs: Iterable[OidcConfig],
        *,
        fetch_policy: FetchPolicy | None = None,
        known_keys: Mapping[KeySource, IssuerKeys] | None = None,
    ) -> None:
        """`known_keys`: the key caches of the verifier this one replaces (a configuration
        reload), reused for the same issuer and JWKS URL so that a reload neither refetches
        every issuer's keys nor loses them while an issuer is down."""
        self._issuers: dict[str, _TrustedIssuer] = {}
        self.issuer_keys: dict[KeySource, IssuerKeys] = {}
        for config in configs:
            # Several entries may name one issuer with different audiences: any of them will do.
            trusted = self._issuers.get(config.issuer)
            if trusted is None:
                source = (config.issuer, config.jwks_url)
                keys = (known_keys or {}).get(source) or IssuerKeys(
                    config.issuer, jwks_url=config.jwks_url, policy=fetch_policy
                )
                self.issuer_keys[source] = keys
                self._issuers[config.issuer] = _TrustedIssuer(config.issuer, [], keys)
                trusted = self._issuers[config.issuer]
            trusted.audiences.append(config.audience)

    async def verify(self, credential: str) -> Principal | None:
        if not _JWT_SHAPE.match(credential):
            return None  # not a JWT: some other verifier's kind
        try:
            return await self._verify(credential)
        except _Rejected as rejected:
            logger.info("OIDC token rejected: %s", rejected)
            raise Unauthorized(f"invalid ID token: {rejected}", error="invalid_token") from None
        except jwt.PyJWTError as exc:
            # A failure the checks below do not name (malformed segments and the like).
            # OidcIssuerUnavailable (503: the keys cannot be fetched) passes through.
            logger.info("OIDC token rejected: %s", type(exc).__name__)
            raise Unauthorized("invalid ID token: malformed", error="invalid_token") from None

    async def _verify(self, token: str) -> Principal:
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise _Rejected("signing algorithm not accepted (only asymmetric algorithms are)")
        trusted, issuer = self._issuer_of(token)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _Rejected("malformed key id (kid)")
        jwk = await trusted.keys.key_for(kid)
        if jwk is None:
            raise _Rejected("signed with a key the issuer does not publish")
        claims = _decode(token, jwk, str(algorithm), trusted.audiences, issuer)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _Rejected("no subject (sub)")
        return Principal.for_oidc(trusted.issuer, subject, claims)

    def _issuer_of(self, token: str) -> tuple[_TrustedIssuer, str]:
        """The trusted issuer the token claims to come from, and the token's own spelling of
        it. Unverified on purpose: `iss` only picks which keys to verify with; `_decode`
        checks the same claim again once the signature is verified."""
        unverified = jwt.decode(token, options={"verify_signature": False})
        issuer = unverified.get("iss")
        trusted = self._issuers.get(issuer.rstrip("/")) if isinstance(issuer, str) else None
        if trusted is None or not isinstance(issuer, str):
            raise _Rejected("issuer not trusted")
        return trusted, issuer


def _decode(
    token: str, jwk: Mapping[str, Any], algorithm: str, audiences: list[str], issuer: str
) -> dict[str, Any]:
    key_algorithm = jwk.get("alg")
    if key_algorithm is not None and key_algorithm != algorithm:
        raise _Rejected("the token's algorithm does not match its key")
    try:
        # The token's algorithm picks how the key is read; a key of the wrong type for it
        # (an EC key for RS256...) fails here rather than verifying anything.
        key = jwt.PyJWK(dict(jwk), algorithm=algorithm)
    except jwt.PyJWTError:
        raise _Rejected("the token's algorithm does not match its key") from None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=audiences,
            # The token's own spelling, known to normalise to the trusted issuer (a trailing
            # slash is the usual difference).
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": list(REQUIRED_CLAIMS), "verify_iat": True, "verify_nbf": True},
        )
    except jwt.ExpiredSignatureError:
        raise _Rejected("expired") from None
    except jwt.ImmatureSignatureError:
        raise _Rejected("not valid yet (nbf or iat in the future)") from None
    except jwt.InvalidAudienceError:
        raise _Rejected("audience (aud) not accepted for this issuer") from None
    except jwt.InvalidIssuerError:
        raise _Rejected("issuer not trusted") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _Rejected(f"missing required claim {exc.claim!r}") from None
    except jwt.InvalidSignatureError:
        raise _Rejected("signature does not verify") from None
    except jwt.InvalidIssuedAtError:
        raise _Rejected("malformed issued-at (iat)") from None
    return claims
