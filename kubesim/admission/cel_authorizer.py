"""CEL's `authorizer` variable (k8s.io/apiserver/pkg/cel/library/authz.go), over kubesim's RBAC.

`authorizer.group('apps').resource('deployments').namespace('ns').name('x').check('get')`
gives a decision with `.allowed()`, `.reason()`, `.errored()` and `.error()`;
`authorizer.path('/healthz').check('get')` checks a non-resource URL;
`authorizer.serviceAccount('ns', 'name')` checks as that ServiceAccount instead of the requester;
`authorizer.requestResource` is the request's own resource, ready for `.check(verb)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from celpy import celtypes

from kubesim.rbac import Decision, RequestAttributes, UserInfo

# Answers whether the user may do what the attributes say (the cluster's RBAC authorizer).
Authorize = Callable[[UserInfo, RequestAttributes], Decision]


class CelAuthorizer(celtypes.MapType):
    """The `authorizer` value: a map only so that `authorizer.requestResource` reads as a
    field; its other members are the functions below."""

    def __init__(self, authorize: Authorize, user: UserInfo, request: RequestAttributes) -> None:
        super().__init__({celtypes.StringType("requestResource"): _Check(self, request)})
        self.authorize = authorize
        self.user = user


@dataclasses.dataclass(frozen=True)
class _Check:
    """A path or resource check being built (PathCheck, GroupCheck, ResourceCheck)."""

    authorizer: CelAuthorizer
    attributes: RequestAttributes


@dataclasses.dataclass(frozen=True)
class _Decision:
    decision: Decision


def _group(target: CelAuthorizer, group: str) -> _Check:
    return _Check(target, RequestAttributes(verb="", api_group=str(group)))


def _path(target: CelAuthorizer, path: str) -> _Check:
    return _Check(target, RequestAttributes(verb="", path=str(path), resource_request=False))


def _with(field: str) -> Callable[[_Check, str], _Check]:
    def build(target: _Check, value: str) -> _Check:
        changes: dict[str, Any] = {field: str(value)}
        return dataclasses.replace(
            target, attributes=dataclasses.replace(target.attributes, **changes)
        )

    return build


def _check(target: _Check, verb: str) -> _Decision:
    attributes = dataclasses.replace(target.attributes, verb=str(verb))
    return _Decision(target.authorizer.authorize(target.authorizer.user, attributes))


def _service_account(target: CelAuthorizer, namespace: str, name: str) -> CelAuthorizer:
    user = UserInfo(
        name=f"system:serviceaccount:{namespace}:{name}",
        groups=(
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        ),
    )
    request = target[celtypes.StringType("requestResource")]
    return CelAuthorizer(target.authorize, user, request.attributes)


AUTHORIZER_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "group": _group,
    "path": _path,
    "resource": _with("resource"),
    "subresource": _with("subresource"),
    "namespace": _with("namespace"),
    "name": _with("name"),
    "check": _check,
    "serviceAccount": _service_account,
    "allowed": lambda decision: celtypes.BoolType(decision.decision.allowed),
    "reason": lambda decision: celtypes.StringType(decision.decision.reason),
    # RBAC answers without errors here; an errored decision never happens.
    "errored": lambda decision: celtypes.BoolType(False),
    "error": lambda decision: celtypes.StringType(""),
}
