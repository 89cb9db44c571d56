"""The `admission.k8s.io/v1` AdmissionReview wire format, as kube-apiserver sends it.

Only the fields the guard judges are read; everything else kube-apiserver sends (requestKind,
requestResource, userInfo.extra, options...) is ignored. An AdmissionReview that is not v1, or
that lacks a request uid, is malformed: kube-apiserver never sends one, so the endpoint answers
400 and kube-apiserver applies the webhook's failurePolicy (Fail).

A denial carries `status.code: 403`: kube-apiserver turns it into
`admission webhook "<name>" denied the request: <message>` with that code (it would use 400 for
a denial without a code, which reads like a malformed request to the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

API_VERSION: Final = "admission.k8s.io/v1"
KIND: Final = "AdmissionReview"


class MalformedReview(ValueError):
    """The body is not an admission.k8s.io/v1 AdmissionReview request."""


@dataclass(frozen=True)
class AdmissionRequest:
    uid: str
    resource: str  # "pods"
    sub_resource: str  # "exec", "attach", "ephemeralcontainers", "" for the object itself
    operation: str  # CONNECT, UPDATE, ...
    name: str
    namespace: str
    username: str
    dry_run: bool
    object: dict[str, Any]
    old_object: dict[str, Any]


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedReview(f"{what} must be an object")
    return value


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedReview(f"{what} must be a string")
    return value


def parse_review(body: Any) -> AdmissionRequest:
    """The request of an AdmissionReview JSON document, or MalformedReview."""
    review = _mapping(body, "the body")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise MalformedReview(f"expected apiVersion {API_VERSION} and kind {KIND}")
    request = _mapping(review.get("request"), "request")
    uid = _text(request.get("uid"), "request.uid")
    if not uid:
        raise MalformedReview("request.uid is required")
    resource = _mapping(request.get("resource"), "request.resource")
    user = _mapping(request.get("userInfo"), "request.userInfo")
    return AdmissionRequest(
        uid=uid,
        resource=_text(resource.get("resource"), "request.resource.resource"),
        sub_resource=_text(request.get("subResource"), "request.subResource"),
        operation=_text(request.get("operation"), "request.operation"),
        name=_text(request.get("name"), "request.name"),
        namespace=_text(request.get("namespace"), "request.namespace"),
        username=_text(user.get("username"), "request.userInfo.username"),
        dry_run=request.get("dryRun") is True,
        object=_mapping(request.get("object"), "request.object"),
        old_object=_mapping(request.get("oldObject"), "request.oldObject"),
    )


def review_response(uid: str, *, allowed: bool, reason: str) -> dict[str, Any]:
    """The AdmissionReview kube-apiserver expects back: same uid, v1, and for a denial a
    Status whose message it shows the caller."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {
            "status": "Failure",
            "code": 403,
            "reason": "Forbidden",
            "message": reason,
        }
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
