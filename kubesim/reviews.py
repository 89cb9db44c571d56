"""authorization.k8s.io reviews and SelfSubjectReview, answered by the same RBAC evaluator
that authorizes requests, so `kubectl auth can-i` (and `--list`, and `auth whoami`) tell the
truth about what a request would do.
"""

from __future__ import annotations

from typing import Any, Final

from kubesim import errors
from kubesim.cluster import Cluster
from kubesim.errors import FieldError
from kubesim.rbac import RequestAttributes, UserInfo
from kubesim.resources import ResourceType
from kubesim.store import Obj

_AUTHZ: Final = "authorization.k8s.io"


def _attributes(rt: ResourceType, spec: dict[str, Any]) -> RequestAttributes:
    resource_attrs = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if (resource_attrs is None) == (non_resource is None):
        raise errors.invalid(
            rt,
            "",
            [
                FieldError(
                    "spec.resourceAttributes",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                    "null",
                )
            ],
        )
    if non_resource is not None:
        return RequestAttributes(
            verb=str(non_resource.get("verb", "")),
            path=str(non_resource.get("path", "")),
            resource_request=False,
        )
    assert resource_attrs is not None
    return RequestAttributes(
        verb=str(resource_attrs.get("verb", "")),
        api_group=str(resource_attrs.get("group", "")),
        resource=str(resource_attrs.get("resource", "")),
        subresource=str(resource_attrs.get("subresource", "")),
        name=str(resource_attrs.get("name", "")),
        namespace=str(resource_attrs.get("namespace", "")),
    )


def _answer(cluster: Cluster, rt: ResourceType, body: Obj, user: UserInfo) -> Obj:
    attrs = _attributes(rt, body.get("spec") or {})
    decision = cluster.authorizer.authorize(user, attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return {
        "kind": rt.kind,
        "apiVersion": rt.api_version,
        "metadata": {**(body.get("metadata") or {}), "creationTimestamp": None},
        "spec": body.get("spec") or {},
        "status": status,
    }


def _require_body(body: Any, rt: ResourceType) -> Obj:
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request must be a {rt.kind}")
    return body


def review(cluster: Cluster, rt: ResourceType, namespace: str, body: Any, user: UserInfo) -> Obj:
    """Answer one review object of type `rt`, created by `user`."""
    body = _require_body(body, rt)
    spec: dict[str, Any] = body.get("spec") or {}
    if rt.kind == "SelfSubjectAccessReview":
        return _answer(cluster, rt, body, user)
    if rt.kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
        subject = UserInfo(
            name=str(spec.get("user", "")),
            groups=tuple(spec.get("groups") or ()),
            uid=str(spec.get("uid", "")),
        )
        if not subject.name and not subject.groups:
            raise errors.invalid(
                rt,
                "",
                [FieldError("spec.user", "at least one of user or group must be specified", "")],
            )
        if rt.kind == "LocalSubjectAccessReview":
            attrs_ns = (spec.get("resourceAttributes") or {}).get("namespace", "")
            if spec.get("nonResourceAttributes") is not None or attrs_ns != namespace:
                raise errors.invalid(
                    rt,
                    "",
                    [
                        FieldError(
                            "spec.resourceAttributes.namespace",
                            "must match metadata.namespace",
                            attrs_ns,
                        )
                    ],
                )
        return _answer(cluster, rt, body, subject)
    if rt.kind == "SelfSubjectRulesReview":
        resource_rules, non_resource_rules = cluster.authorizer.rules_for(
            user, str(spec.get("namespace", ""))
        )
        return {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": False,
            },
        }
    if rt.kind == "SelfSubjectReview":
        info: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            info["uid"] = user.uid
        return {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": info},
        }
    raise errors.method_not_allowed()
