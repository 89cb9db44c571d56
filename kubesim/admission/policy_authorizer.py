"""CEL's `authorizer` in admission policies (the Kubernetes authz library): access checks made
with kubesim's RBAC for the requesting user, e.g.
`authorizer.group('').resource('pods').namespace('payments').check('create').allowed()`,
`authorizer.serviceAccount('ns', 'sa').resource('pods')…`, `authorizer.path('/healthz')…` and
`authorizer.requestResource.check('delete')` (the resource of the request being admitted).

celpy calls a method `x.f(args)` as the function `f(x, args)`, so each method below is a
function that accepts only its receiver's type; anything else is "no such overload".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final, Protocol

from celpy import celtypes
from celpy.evaluation import CELEvalError

from kubesim.admission.attributes import AdmissionAttributes
from kubesim.rbac import Decision, RequestAttributes, UserInfo, service_account_username


class Authorizer(Protocol):
    def authorize(self, user: UserInfo, attrs: RequestAttributes) -> Decision: ...


class _Value(celtypes.MapType):
    """A CEL value carrying Python state (a map, so that field access works on it)."""

    def __init__(self, authorizer: Authorizer, user: UserInfo, entries: dict[str, Any]) -> None:
        super().__init__({celtypes.StringType(k): v for k, v in entries.items()})
        self.authorizer = authorizer
        self.user = user


class _AuthorizerValue(_Value):
    pass


class _GroupCheck(_Value):
    group: str = ""


class _ResourceCheck(_Value):
    attrs: RequestAttributes = RequestAttributes(verb="")


class _PathCheck(_Value):
    path: str = ""


class _DecisionValue(_Value):
    decision: Decision = Decision(False)


def authorizer_value(authorizer: Authorizer, attributes: AdmissionAttributes) -> celtypes.MapType:
    """`authorizer` for the user of `attributes`, with `requestResource` bound."""
    gvr = attributes.resource
    request = _ResourceCheck(authorizer, attributes.user, {})
    request.attrs = RequestAttributes(
        verb="",
        api_group=gvr.group,
        resource=gvr.resource,
        subresource=attributes.subresource,
        name=attributes.name,
        namespace=attributes.namespace,
    )
    return _AuthorizerValue(authorizer, attributes.user, {"requestResource": request})


def _group(receiver: Any, group: Any) -> Any:
    if not isinstance(receiver, _AuthorizerValue):
        return CELEvalError("no such overload")
    check = _GroupCheck(receiver.authorizer, receiver.user, {})
    check.group = str(group)
    return check


def _resource(receiver: Any, resource: Any) -> Any:
    if not isinstance(receiver, _GroupCheck):
        return CELEvalError("no such overload")
    check = _ResourceCheck(receiver.authorizer, receiver.user, {})
    check.attrs = RequestAttributes(verb="", api_group=receiver.group, resource=str(resource))
    return check


def _narrowing(field: str) -> Callable[[Any, Any], Any]:
    def narrow(receiver: Any, value: Any) -> Any:
        if not isinstance(receiver, _ResourceCheck):
            return CELEvalError("no such overload")
        check = _ResourceCheck(receiver.authorizer, receiver.user, {})
        changes: dict[str, Any] = {field: str(value)}
        check.attrs = dataclasses.replace(receiver.attrs, **changes)
        return check

    return narrow


def _path(receiver: Any, path: Any) -> Any:
    if not isinstance(receiver, _AuthorizerValue):
        return CELEvalError("no such overload")
    check = _PathCheck(receiver.authorizer, receiver.user, {})
    check.path = str(path)
    return check


def _service_account(receiver: Any, namespace: Any, name: Any) -> Any:
    if not isinstance(receiver, _AuthorizerValue):
        return CELEvalError("no such overload")
    user = UserInfo(
        service_account_username(str(namespace), str(name)),
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )
    return _AuthorizerValue(receiver.authorizer, user, {})


def _check(receiver: Any, verb: Any) -> Any:
    if isinstance(receiver, _ResourceCheck):
        attrs = dataclasses.replace(receiver.attrs, verb=str(verb))
    elif isinstance(receiver, _PathCheck):
        attrs = RequestAttributes(verb=str(verb), path=receiver.path, resource_request=False)
    else:
        return CELEvalError("no such overload")
    decision = _DecisionValue(receiver.authorizer, receiver.user, {})
    decision.decision = receiver.authorizer.authorize(receiver.user, attrs)
    return decision


def _decision_field(read: Callable[[Decision], Any]) -> Callable[[Any], Any]:
    def field(receiver: Any) -> Any:
        if not isinstance(receiver, _DecisionValue):
            return CELEvalError("no such overload")
        return read(receiver.decision)

    return field


AUTHORIZER_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "group": _group,
    "resource": _resource,
    "subresource": _narrowing("subresource"),
    "namespace": _narrowing("namespace"),
    "name": _narrowing("name"),
    "path": _path,
    "serviceAccount": _service_account,
    "check": _check,
    "allowed": _decision_field(lambda d: celtypes.BoolType(d.allowed)),
    "reason": _decision_field(lambda d: celtypes.StringType(d.reason)),
    # RBAC answers allow or deny; it never fails to evaluate.
    "errored": _decision_field(lambda d: celtypes.BoolType(False)),
    "error": _decision_field(lambda d: celtypes.StringType("")),
}
