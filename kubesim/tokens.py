"""ServiceAccount tokens: signed JWTs shaped like the apiserver's bound tokens.

A token is only a signed claim that names a ServiceAccount (and its uid) and an expiry; whether
it still authenticates is decided by `kubesim.authn`, which checks the claims against the live
objects. That is what makes deleting (or re-creating) a ServiceAccount revoke its tokens, though,
as on a real apiserver, only once a cached successful authentication of the token has expired
(`kubesim.tokencache`), and a token stays good for a minute past `exp` (the JWT leeway).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from kubesim.store import Clock

DEFAULT_ISSUER: Final = "https://kubernetes.default.svc.cluster.local"
MIN_EXPIRATION_SECONDS: Final = 600
DEFAULT_EXPIRATION_SECONDS: Final = 3600
MAX_EXPIRATION_SECONDS: Final = 2**32
# go-jose's jwt.DefaultLeeway, which the apiserver's ServiceAccount validator applies to `exp`,
# `nbf` and `iat` (pkg/serviceaccount/claims.go): a token is still good for a minute past `exp`.
JWT_LEEWAY_SECONDS: Final = 60


@dataclass(frozen=True)
class BoundObject:
    kind: str  # Pod | Secret
    name: str
    uid: str


class TokenSigner:
    def __init__(self, clock: Clock, issuer: str = DEFAULT_ISSUER) -> None:
        self._clock = clock
        self.issuer = issuer
        # The API audience: tokens requested without audiences get it, and only tokens that
        # carry it authenticate to this server (like --api-audiences defaulting to the issuer).
        self.api_audiences: tuple[str, ...] = (issuer,)
        # The key object itself is handed to PyJWT: given PEM bytes, it would parse them and
        # re-run the RSA key consistency checks on every token (~50 ms each), making every
        # TokenRequest far slower than a real API server's.
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = self._private_key.public_key()
        self._kid = uuid.uuid4().hex
        # Signature checks cost far more than the rest of a request; tokens are immutable, so
        # remember the claims of each good one (expiry and the SA are still checked per request).
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(
        self,
        namespace: str,
        name: str,
        sa_uid: str,
        audiences: Sequence[str],
        expiration_seconds: int,
        bound: BoundObject | None = None,
    ) -> tuple[str, int]:
        """Sign a token; returns it and its `exp` (Unix seconds)."""
        now = int(self._clock.now())
        expires = now + expiration_seconds
        k8s_claims: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": sa_uid},
        }
        if bound is not None:
            k8s_claims[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        claims = {
            "aud": list(audiences) or list(self.api_audiences),
            "exp": expires,
            "iat": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s_claims,
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        token = jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": self._kid})
        return token, expires

    def verify(self, token: str) -> Mapping[str, Any] | None:
        """The claims of a token this server signed for its own audience and that is within its
        validity window now; None otherwise."""
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = jwt.decode(
                    token,
                    self._public_key,
                    algorithms=["RS256"],
                    issuer=self.issuer,
                    # Time claims are checked below against the simulated clock.
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_aud": False,
                    },
                )
            except jwt.PyJWTError:
                return None
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[token] = claims
        now = self._clock.now()
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences or []
        if not set(audiences) & set(self.api_audiences):
            return None
        leeway = JWT_LEEWAY_SECONDS
        # go-jose: expired when now - leeway is after exp; not valid yet when now + leeway is
        # before nbf; issued in the future when now + leeway is before iat.
        if now - leeway > claims.get("exp", 0):
            return None
        if now + leeway < max(claims.get("nbf", 0), claims.get("iat", 0)):
            return None
        return claims
