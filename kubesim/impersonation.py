"""User impersonation (`kubectl --as`, `--as-group`), with the apiserver's authorization.

Impersonating is itself authorized: the requester needs `impersonate` on `users` (or on the
`serviceaccounts` object, for a ServiceAccount username), on each `groups` entry, on `uids`
and `userextras` in authentication.k8s.io. Only then does the request continue as the
impersonated user, with that user's permissions and nothing more.
"""

from __future__ import annotations

from typing import Final

from kubesim import errors
from kubesim.errors import ApiError
from kubesim.httpio import Request
from kubesim.rbac import Authorizer, RequestAttributes, UserInfo, forbidden_message

_USER: Final = "impersonate-user"
_GROUP: Final = "impersonate-group"
_UID: Final = "impersonate-uid"
_EXTRA_PREFIX: Final = "impersonate-extra-"
_SA_PREFIX: Final = "system:serviceaccount:"
_AUTHENTICATED: Final = "system:authenticated"
_UNAUTHENTICATED: Final = "system:unauthenticated"
_ANONYMOUS: Final = "system:anonymous"


def _check(authorizer: Authorizer, requester: UserInfo, attrs: RequestAttributes) -> None:
    decision = authorizer.authorize(requester, attrs)
    if not decision.allowed:
        details = {"name": attrs.name, "kind": attrs.resource}
        if attrs.api_group:
            details["group"] = attrs.api_group
        message = forbidden_message(requester, attrs, decision.reason)
        raise ApiError(403, "Forbidden", message, details)


def impersonate(authorizer: Authorizer, requester: UserInfo, request: Request) -> UserInfo:
    """The user the request acts as: `requester`, or whom it may impersonate."""
    username = request.headers.get(_USER, "")
    groups = request.header_values(_GROUP)
    uid = request.headers.get(_UID, "")
    extras = [(k[len(_EXTRA_PREFIX) :], v) for k, v in request.header_lines
              if k.startswith(_EXTRA_PREFIX)]  # fmt: skip
    if not username:
        if groups or uid or extras:
            raise errors.bad_request(
                "requested impersonation of groups, uid or extra without impersonating a user"
            )
        return requester

    if username.startswith(_SA_PREFIX) and username.count(":") == 3:
        namespace, name = username[len(_SA_PREFIX) :].split(":")
        user_attrs = RequestAttributes(
            verb="impersonate", resource="serviceaccounts", namespace=namespace, name=name
        )
        if not groups:
            # A ServiceAccount's groups are a fixed mapping, as the apiserver fills them in.
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    else:
        user_attrs = RequestAttributes(verb="impersonate", resource="users", name=username)
    _check(authorizer, requester, user_attrs)
    for group in groups:
        _check(
            authorizer, requester, RequestAttributes("impersonate", resource="groups", name=group)
        )
    if uid:
        _check(
            authorizer,
            requester,
            RequestAttributes(
                "impersonate", api_group="authentication.k8s.io", resource="uids", name=uid
            ),
        )
    for key, value in extras:
        _check(
            authorizer,
            requester,
            RequestAttributes(
                "impersonate",
                api_group="authentication.k8s.io",
                resource="userextras",
                subresource=key,
                name=value,
            ),
        )
    if username != _ANONYMOUS and not {_AUTHENTICATED, _UNAUTHENTICATED} & set(groups):
        groups = [*groups, _AUTHENTICATED]
    return UserInfo(name=username, groups=tuple(groups), uid=uid)
