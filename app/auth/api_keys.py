"""API keys: `sg_` plus 256 random bits. Only their sha256 is configured, so the config file and
database never hold a usable key; the key itself is shown once by `scangate keys create`."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from typing import Final

from app.auth.principals import Principal
from app.errors import Unauthorized
from app.settings_sections import ApiKeyConfig

API_KEY_PREFIX: Final = "sg_"
_API_KEY_SHAPE = re.compile(r"^sg_[A-Za-z0-9_-]{20,200}$")


def hash_api_key(key: str) -> str:
    """The hex sha256 configured for `key` (`api_keys[].sha256`)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_api_key() -> tuple[str, str]:
    """A fresh key and its hash: `(key, sha256_hex)`."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_api_key(key)


class ApiKeyVerifier:
    """Checks `sg_` keys against the configured hashes."""

    def __init__(self, keys: Iterable[ApiKeyConfig]) -> None:
        self._keys = tuple((k.name, k.sha256) for k in keys)

    def match(self, key: str) -> str | None:
        """The name of the configured key `key` hashes to, or None.

        Every configured hash is compared, with `hmac.compare_digest`, and the loop never exits
        early, so response time says nothing about which hash (or how much of it) matched.
        """
        digest = hash_api_key(key)
        found: str | None = None
        for name, expected in self._keys:
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        return found

    async def verify(self, credential: str) -> Principal | None:
        if not credential.startswith(API_KEY_PREFIX):
            return None
        name = self.match(credential) if _API_KEY_SHAPE.match(credential) else None
        if name is None:
            raise Unauthorized("invalid credentials", error="invalid_token")
        return Principal.for_api_key(name)
