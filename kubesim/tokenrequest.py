"""TokenRequest (`serviceaccounts/<name>/token`) and TokenReview, with the apiserver's rules.

The rules scangate's design leans on are enforced exactly: a lifetime under ten minutes is a
422, the default is one hour, and a server-side maximum shortens longer requests with only a
`Warning` header to say so (clients must read `status.expirationTimestamp`, not assume what
they asked for). A bound Pod must run as the ServiceAccount the token is for.
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


def _invalid(sa_name: str, field: str, value: Any, detail: str) -> errors.ApiError:
    problem = FieldError(field, detail, value)
    return errors.invalid(
        _SERVICE_ACCOUNTS, sa_name, [problem], kind="TokenRequest", group=_AUTHN_GROUP
    )


def _check_request_names(body: Obj, namespace: str, sa_name: str) -> None:
    """A name or namespace in the body must be the URL's (checked before anything is read)."""
    meta = body.get("metadata") or {}
    request_name, request_namespace = meta.get("name", ""), meta.get("namespace", "")
    if request_name and request_name != sa_name:
        detail = "must match the service account name if specified"
        raise _invalid(sa_name, "metadata.name", request_name, detail)
    if request_namespace and request_namespace != namespace:
        detail = "must match the service account namespace if specified"
        raise _invalid(sa_name, "metadata.namespace", request_namespace, detail)


def _validate_spec(body: Obj) -> tuple[int, list[str], dict[str, Any] | None]:
    """ValidateTokenRequest, after the ServiceAccount was found (so its 422 names no object)."""
    spec = body.get("spec") or {}
    problems: list[FieldError] = []
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
    if bound is not None and not isinstance(bound, dict):
        problems.append(FieldError("spec.boundObjectRef", "must be an object", bound))
    if problems:
        raise errors.invalid(
            _SERVICE_ACCOUNTS, "", problems, kind="TokenRequest", group=_AUTHN_GROUP
        )
    return int(seconds), list(audiences), bound


def _bind(cluster: Cluster, namespace: str, sa_name: str, ref: dict[str, Any]) -> BoundObject:
    """The object a token is bound to: a Pod running as this ServiceAccount, or a Secret."""
    api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
    group, _, version = api_version.rpartition("/")
    name = str(ref.get("name") or "")
    if group or kind not in _BINDABLE:
        if not group and kind == "Node":
            # Bindable upstream, but kubesim runs no nodes, so none can be found.
            raise errors.ApiError(404, "NotFound", f'nodes "{name}" not found', {"name": name})
        raise errors.bad_request(
            f"cannot bind token to object of type {group}/{version}, Kind={kind}"
        )
    rt = _BINDABLE[kind]
    target = cluster.store.peek(rt, namespace, name)
    if target is None:
        raise errors.not_found(rt, name)
    if kind == "Pod" and (target.get("spec") or {}).get("serviceAccountName") != sa_name:
        raise errors.bad_request(
            f'cannot bind token for serviceaccount "{sa_name}" to pod running with different '
            "serviceaccount name."
        )
    uid = target["metadata"]["uid"]
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {kind} "{name}": the UID in the bound object '
            f"reference ({ref['uid']}) does not match the UID in record. The object might have "
            "been deleted and then recreated",
            {"name": name, "kind": kind},
        )
    return BoundObject(kind, name, uid)


def create_token(
    cluster: Cluster, namespace: str, sa_name: str, body: Any
) -> tuple[Obj, list[str]]:
    """The TokenRequest answered, and the warnings its response carries.

    In kube-apiserver's order: body name/namespace against the URL (422), the ServiceAccount
    (404), static validation (422), the bound object (400/404/409), then a lifetime beyond the
    server's maximum is shortened with a warning."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a TokenRequest")
    _check_request_names(body, namespace, sa_name)
    sa = cluster.store.peek(_SERVICE_ACCOUNTS, namespace, sa_name)
    if sa is None:
        raise errors.not_found(_SERVICE_ACCOUNTS, sa_name)
    seconds, audiences, bound_ref = _validate_spec(body)
    bound = None
    if bound_ref is not None:
        bound = _bind(cluster, namespace, sa_name, bound_ref)
        bound_ref = {**bound_ref, "uid": bound.uid}
    warnings: list[str] = []
    maximum = cluster.config.token_max_seconds
    if maximum is not None and seconds > maximum:
        warnings.append(f"requested expiration of {seconds} seconds shortened to {maximum} seconds")
        seconds = maximum
    token, expires = cluster.signer.issue(
        namespace, sa_name, sa["metadata"]["uid"], audiences, seconds, bound
    )
    spec: dict[str, Any] = {
        "audiences": audiences or list(cluster.signer.api_audiences),
        "expirationSeconds": seconds,
        "boundObjectRef": bound_ref,
    }
    answer = {
        "kind": "TokenRequest",
        "apiVersion": f"{_AUTHN_GROUP}/v1",
        "metadata": {"name": sa_name, "namespace": namespace, "creationTimestamp": None},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": _rfc3339(expires)},
    }
    return answer, warnings


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
