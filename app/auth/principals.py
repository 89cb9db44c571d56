"""Who is calling: the `Principal` type and the `CredentialVerifier` protocol each credential
kind (API keys, OIDC ID tokens) implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

PrincipalKind = Literal["apikey", "oidc"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    `id` is the string policies and `admins` match on: `apikey:NAME` or `oidc:ISSUER#SUBJECT`.
    `claims` holds the verified token claims for OIDC principals (empty for API keys).
    """

    id: str
    kind: PrincipalKind
    claims: Mapping[str, Any] = field(default_factory=dict)
    is_admin: bool = False

    @classmethod
    def for_api_key(cls, name: str) -> Principal:
        return cls(id=f"apikey:{name}", kind="apikey")

    @classmethod
    def for_oidc(cls, issuer: str, subject: str, claims: Mapping[str, Any]) -> Principal:
        return cls(id=f"oidc:{issuer}#{subject}", kind="oidc", claims=dict(claims))


class CredentialVerifier(Protocol):
    """One kind of bearer credential (API key, OIDC ID token...)."""

    async def verify(self, credential: str) -> Principal | None:
        """The principal for `credential`; None if it is not this verifier's kind; raise
        `Unauthorized` if it is this kind but invalid."""
        ...
