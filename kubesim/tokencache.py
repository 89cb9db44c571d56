"""The token authentication cache kube-apiserver puts in front of its bearer-token
authenticators (k8s.io/apiserver/pkg/authentication/token/cache).

kube-apiserver caches every *successful* token authentication for `TokenSuccessCacheTTL`, 10 s
(set in code, `NewBuiltInAuthenticationOptions`; no flag changes it), and failures not at all
(`TokenFailureCacheTTL` 0). ServiceAccount tokens are cached like the others, so a token that
authenticated a moment ago keeps authenticating until its entry expires, even after its
ServiceAccount (or bound Pod/Secret) is deleted or its `exp` passes. An entry lives from the
lookup that created it; hits do not extend it. The cache is bounded (upstream: 32 stripes of
128-entry LRUs); an evicted token is simply checked again.

Time is kubesim's clock, so `advance_clock` ages the entries too.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from kubesim.rbac import UserInfo
from kubesim.store import Clock

DEFAULT_TOKEN_CACHE_TTL_SECONDS: Final = 10.0
_MAX_ENTRIES: Final = 32 * 128


class TokenAuthenticationCache:
    def __init__(self, clock: Clock, ttl_seconds: float) -> None:
        self._clock = clock
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, UserInfo]] = OrderedDict()

    def get(self, token: str) -> UserInfo | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        expires, user = entry
        if self._clock.now() >= expires:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return user

    def remember(self, token: str, user: UserInfo) -> None:
        if self.ttl_seconds <= 0:
            return
        self._entries[token] = (self._clock.now() + self.ttl_seconds, user)
        self._entries.move_to_end(token)
        while len(self._entries) > _MAX_ENTRIES:
            self._entries.popitem(last=False)

    def forget(self, token: str) -> None:
        self._entries.pop(token, None)

    def clear(self) -> None:
        self._entries.clear()
