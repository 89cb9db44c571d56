"""Bearer-token authentication: admin tokens, static user tokens, ServiceAccount JWTs.

Like a cluster with anonymous auth disabled, a request without a token that authenticates is a
401. Every authenticated user is in `system:authenticated`, as the apiserver's authenticator
chain adds it. As in kube-apiserver, the token reaches the authenticators either in the
`Authorization` header or, on a WebSocket upgrade, as the subprotocol
`base64url.bearer.authorization.k8s.io.<base64url(token)>` (browsers cannot set headers on a
WebSocket), and all of them sit behind one cache of successful authentications
(`kubesim.tokencache`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

from kubesim.httpio import Request
from kubesim.rbac import UserInfo
from kubesim.resources import resource
from kubesim.store import Store
from kubesim.tokencache import TokenAuthenticationCache
from kubesim.tokens import TokenSigner

AUTHENTICATED: Final = "system:authenticated"
MASTERS: Final = "system:masters"
ADMIN_USER: Final = "kubesim-admin"

_SERVICE_ACCOUNTS = resource("", "serviceaccounts")
_BOUND_KINDS: Final = {"pod": resource("", "pods"), "secret": resource("", "secrets")}
BEARER_PROTOCOL_PREFIX: Final = "base64url.bearer.authorization.k8s.io."


def service_account_user(namespace: str, name: str, uid: str) -> UserInfo:
    return UserInfo(
        name=f"system:serviceaccount:{namespace}:{name}",
        groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
        uid=uid,
    )


class Authenticator:
    def __init__(
        self,
        store: Store,
        signer: TokenSigner,
        admin_tokens: list[str],
        cache: TokenAuthenticationCache,
    ) -> None:
        self._store = store
        self._signer = signer
        self._admin_tokens = frozenset(admin_tokens)
        self._static: dict[str, UserInfo] = {}
        self.cache = cache

    def add_user_token(self, token: str, user: str, groups: list[str]) -> None:
        all_groups = tuple(dict.fromkeys([*groups, AUTHENTICATED]))
        self._static[token] = UserInfo(name=user, groups=all_groups)
        # Not an apiserver operation (its token file is fixed): a re-added token means
        # what it says now.
        self.cache.forget(token)

    def clear_user_tokens(self) -> None:
        self._static.clear()

    def authenticate_request(self, request: Request) -> UserInfo | None:
        """The user of an API request, from its `Authorization` header or, for a WebSocket
        upgrade, its bearer-token subprotocol (tried in that order, as the apiserver's union
        of request authenticators does). The token subprotocol is never offered back."""
        protocol_token = _take_protocol_token(request)
        user = self.authenticate_header(request.headers.get("authorization"))
        if user is None and protocol_token:
            user = self.authenticate_token(protocol_token)
        return user

    def is_admin_token(self, token: str) -> bool:
        return token in self._admin_tokens

    def authenticate_header(self, authorization: str | None) -> UserInfo | None:
        if not authorization:
            return None
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() == "basic" and credential:
            # Not something kube-apiserver accepts: kubectl never sends a bearer token over
            # plain HTTP (kubernetes/kubectl#744), so for HTTP-only test setups a token may
            # ride as the password of URL credentials (http://user:TOKEN@host), which Go's
            # HTTP client sends as Basic auth. It is still the token that authenticates.
            try:
                decoded = base64.b64decode(credential, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            credential = decoded.partition(":")[2]
        elif scheme.lower() != "bearer":
            return None
        return self.authenticate_token(credential) if credential else None

    def authenticate_token(self, token: str) -> UserInfo | None:
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        user = self._authenticate_uncached(token)
        if user is not None:
            self.cache.remember(token, user)
        return user

    def _authenticate_uncached(self, token: str) -> UserInfo | None:
        if token in self._admin_tokens:
            return UserInfo(name=ADMIN_USER, groups=(MASTERS, AUTHENTICATED))
        static = self._static.get(token)
        if static is not None:
            return static
        if token.count(".") != 2:
            return None
        claims = self._signer.verify(token)
        if claims is None:
            return None
        return self._service_account(claims)

    def _service_account(self, claims: Mapping[str, Any]) -> UserInfo | None:
        k8s = claims.get("kubernetes.io")
        if not isinstance(k8s, Mapping):
            return None
        namespace = k8s.get("namespace", "")
        sa = k8s.get("serviceaccount") or {}
        name, uid = sa.get("name", ""), sa.get("uid", "")
        if claims.get("sub") != f"system:serviceaccount:{namespace}:{name}":
            return None
        # The token is only as alive as the ServiceAccount it names: a deleted SA, or one
        # re-created under the same name (new uid), no longer authenticates it.
        live = self._store.peek(_SERVICE_ACCOUNTS, namespace, name)
        if live is None or live["metadata"].get("uid") != uid:
            return None
        for claim, rt in _BOUND_KINDS.items():
            bound = k8s.get(claim)
            if isinstance(bound, Mapping):
                obj = self._store.peek(rt, namespace, bound.get("name", ""))
                if obj is None or obj["metadata"].get("uid") != bound.get("uid"):
                    return None
        return service_account_user(namespace, name, uid)


def _take_protocol_token(request: Request) -> str | None:
    """Remove the bearer-token subprotocol from a WebSocket request's offer and return its
    token: "" when none is offered, None when the offer is unusable (which fails the request
    unless its header authenticates). Like the apiserver's ProtocolAuthenticator: the token is
    unpadded base64url of UTF-8, at most one may be offered, and another subprotocol must be
    offered beside it (the server has to answer with one)."""
    if not request.websocket:
        return ""
    tokens = [p for p in request.subprotocols if p.startswith(BEARER_PROTOCOL_PREFIX)]
    if not tokens:
        return ""
    request.subprotocols = [p for p in request.subprotocols if p not in tokens]
    if len(tokens) > 1 or not request.subprotocols:
        return None
    encoded = tokens[0][len(BEARER_PROTOCOL_PREFIX) :]
    if any(c in encoded for c in "=+/"):  # RawURLEncoding: no padding, URL alphabet only
        return None
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
