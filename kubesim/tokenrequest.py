"""TokenRequest (`serviceaccounts/<name>/token`) and TokenReview, with the apiserver's rules.

The rules scangate's design leans on are enforced exactly: a lifetime under ten minutes is a
422, the default is one hour, and a server-side maximum silently shortens longer requests
(clients must read `status.expirationTimestamp`, not assume what they asked for).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from kubesim import errors
from kubesim.cluster import Cluster
from kubesim.errors import FieldError
from kubesim.resources import resource
from kubesim.store import Obj
from kubesim.tokens import (
    DEFAULT_EXPIRATION_SECONDS,
    MAX_EXPIRATION_SECONDS,
    MIN_EXPIRATION_SECONDS,
    BoundObject,
)

_AUTHN_GROUP: Final = "authentication.k8s.io"
_SERVICE_ACCOUNTS: Final = resource("", "serviceaccounts")
_BINDABLE: Final = {"Pod": resource("", "pods"), "Secret": resource("", "secrets")}


def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _validate(body: Obj, sa_name: str) -> tuple[int, list[str], dict[str, Any] | None]:
    spec = body.get("spec") or {}
    request_name = (body.get("metadata") or {}).get("name", "")
    problems: list[FieldError] = []
    if request_name and request_name != sa_name:
        problems.append(
            FieldError(
                "metadata.name", "must match the service account name if specified", request_name
            )
        )
    seconds = spec.get("expirationSeconds")
    if seconds is None:  # omitted or null: the v1 defaulter's one hour
        seconds = DEFAULT_EXPIRATION_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        problems.append(FieldError("spec.expirationSeconds", "must be an integer", seconds))
    elif seconds < MIN_EXPIRATION_SECONDS:
        problems.append(
            FieldError(
                "spec.expirationSeconds", "may not specify a duration less than 10 minutes", seconds
            )
        )
    elif seconds > MAX_EXPIRATION_SECONDS:
        problems.append(
            FieldError(
                "spec.expirationSeconds",
                "may not specify a duration larger than 2^32 seconds",
                seconds,
            )
        )
    audiences = spec.get("audiences") or []
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        problems.append(FieldError("spec.audiences", "must be a list of strings", audiences))
    bound = spec.get("boundObjectRef")
    if bound is not None and (not isinstance(bound, dict) or bound.get("kind") not in _BINDABLE):
        kind = bound.get("kind") if isinstance(bound, dict) else bound
        problems.append(
            FieldError(
                "spec.boundObjectRef.kind",
                'supported values: "Pod", "Secret"',
                kind,
                kind="unsupported",
            )
        )
    if problems:
        # The apiserver names the TokenRequest (not the ServiceAccount): usually "".
        raise errors.invalid(
            _SERVICE_ACCOUNTS, request_name, problems, kind="TokenRequest", group=_AUTHN_GROUP
        )
    return int(seconds), list(audiences), bound


def create_token(cluster: Cluster, namespace: str, sa_name: str, body: Any) -> Obj:
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a TokenRequest")
    seconds, audiences, bound_ref = _validate(body, sa_name)
    sa = cluster.store.peek(_SERVICE_ACCOUNTS, namespace, sa_name)
    if sa is None:
        raise errors.not_found(_SERVICE_ACCOUNTS, sa_name)
    bound = None
    if bound_ref is not None:
        rt = _BINDABLE[bound_ref["kind"]]
        target = cluster.store.peek(rt, namespace, bound_ref.get("name", ""))
        if target is None:
            raise errors.not_found(rt, bound_ref.get("name", ""))
        uid = target["metadata"]["uid"]
        if bound_ref.get("uid") and bound_ref["uid"] != uid:
            raise errors.conflict(
                rt,
                bound_ref.get("name", ""),
                f"the UID in the bound object reference ({bound_ref['uid']}) does not match "
                "the UID in record. The object might have been deleted and then recreated",
            )
        bound = BoundObject(bound_ref["kind"], bound_ref["name"], uid)
        bound_ref = {**bound_ref, "uid": uid}
    maximum = cluster.config.token_max_seconds
    if maximum is not None and seconds > maximum:
        seconds = maximum
    token, expires = cluster.signer.issue(
        namespace, sa_name, sa["metadata"]["uid"], audiences, seconds, bound
    )
    spec: dict[str, Any] = {
        "audiences": audiences or list(cluster.signer.api_audiences),
        "expirationSeconds": seconds,
        "boundObjectRef": bound_ref,
    }
    return {
        "kind": "TokenRequest",
        "apiVersion": f"{_AUTHN_GROUP}/v1",
        "metadata": {"name": sa_name, "namespace": namespace, "creationTimestamp": None},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": _rfc3339(expires)},
    }


def review_token(cluster: Cluster, body: Any) -> Obj:
    """TokenReview: what the apiserver would make of a bearer token."""
    spec = body.get("spec") if isinstance(body, dict) else None
    token = spec.get("token", "") if isinstance(spec, dict) else ""
    user = cluster.authenticator.authenticate_token(token) if token else None
    status: dict[str, Any] = {"authenticated": user is not None}
    if user is not None:
        info: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            info["uid"] = user.uid
        status["user"] = info
        status["audiences"] = list(cluster.signer.api_audiences)
    else:
        status["user"] = {}
        status["error"] = "[invalid bearer token, token lookup failed]"
    return {
        "kind": "TokenReview",
        "apiVersion": f"{_AUTHN_GROUP}/v1",
        "metadata": {"creationTimestamp": None},
        # Echoed back as the apiserver does (the review is the caller's own object).
        "spec": spec or {},
        "status": status,
    }
