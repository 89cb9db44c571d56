"""Bearer-token authentication: admin tokens, static user tokens, ServiceAccount JWTs.

Like a cluster with anonymous auth disabled, a request without a token that authenticates is a
401. Every authenticated user is in `system:authenticated`, as the apiserver's authenticator
chain adds it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

from kubesim.rbac import UserInfo
from kubesim.resources import resource
from kubesim.store import Store
from kubesim.tokens import TokenSigner

AUTHENTICATED: Final = "system:authenticated"
MASTERS: Final = "system:masters"
ADMIN_USER: Final = "kubesim-admin"

_SERVICE_ACCOUNTS = resource("", "serviceaccounts")
_BOUND_KINDS: Final = {"pod": resource("", "pods"), "secret": resource("", "secrets")}


def service_account_user(namespace: str, name: str, uid: str) -> UserInfo:
    return UserInfo(
        name=f"system:serviceaccount:{namespace}:{name}",
        groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
        uid=uid,
    )


class Authenticator:
    def __init__(self, store: Store, signer: TokenSigner, admin_tokens: list[str]) -> None:
        self._store = store
        self._signer = signer
        self._admin_tokens = frozenset(admin_tokens)
        self._static: dict[str, UserInfo] = {}

    def add_user_token(self, token: str, user: str, groups: list[str]) -> None:
        all_groups = tuple(dict.fromkeys([*groups, AUTHENTICATED]))
        self._static[token] = UserInfo(name=user, groups=all_groups)

    def clear_user_tokens(self) -> None:
        self._static.clear()

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
