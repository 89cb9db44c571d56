"""The `Authenticator`: turns a bearer credential into a `Principal`.

Each credential kind has its own verifier. A verifier returns None for credentials that are not
its kind, so the authenticator can ask each in turn, and raises `Unauthorized` for credentials
of its kind that it rejects. Admin rights are decided once, here, from `admins`, so no verifier
can grant them by accident. API keys are asked first: their `sg_` prefix is a cheap test, and
an OIDC check may have to fetch the issuer's keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Final

from app.auth.api_keys import ApiKeyVerifier
from app.auth.oidc import OidcVerifier
from app.auth.principals import CredentialVerifier, Principal
from app.errors import Unauthorized
from app.settings import Settings

# Bearer values longer than this are rejected before any verifier sees them (a JWT with a
# generous claim set stays far below it).
MAX_CREDENTIAL_LENGTH: Final = 8192


class Authenticator:
    """Tries each registered verifier in order and applies the admin list."""

    def __init__(self, verifiers: Sequence[CredentialVerifier], admins: Iterable[str]) -> None:
        self.verifiers = tuple(verifiers)
        self._admins = frozenset(admins)

    async def authenticate(self, credential: str) -> Principal:
        if not credential or len(credential) > MAX_CREDENTIAL_LENGTH:
            raise Unauthorized("invalid credentials", error="invalid_token")
        for verifier in self.verifiers:
            principal = await verifier.verify(credential)
            if principal is not None:
                return dataclasses.replace(principal, is_admin=principal.id in self._admins)
        # Deliberately vague: say neither which kinds exist nor why this one failed.
        raise Unauthorized("invalid credentials", error="invalid_token")


def build_authenticator(settings: Settings, previous: Authenticator | None = None) -> Authenticator:
    """The verifiers for `settings`: API keys, and OIDC ID tokens when issuers are configured.

    `previous` is the authenticator a configuration reload replaces: its OIDC issuers' cached
    signing keys carry over to the same issuers (app/reload)."""
    verifiers: list[CredentialVerifier] = [ApiKeyVerifier(settings.api_keys)]
    if settings.oidc:
        known = next(
            (v.issuer_keys for v in previous.verifiers if isinstance(v, OidcVerifier)), None
        ) if previous is not None else None  # fmt: skip
        verifiers.append(OidcVerifier(settings.oidc, known_keys=known))
    return Authenticator(verifiers, settings.admins)
