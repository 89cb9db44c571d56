"""What admission is asked about one request: kube-apiserver's admission.Attributes.

Built at the points of admission (a write about to be stored, a delete, a CONNECT about to
open its stream) and turned into the AdmissionRequest that webhooks receive and that CEL sees
as `request`, field for field as k8s.io/apiserver's CreateV1AdmissionReview fills it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubesim.rbac import UserInfo
from kubesim.resources import ResourceType

Obj = dict[str, Any]

CREATE: Final = "CREATE"
UPDATE: Final = "UPDATE"
DELETE: Final = "DELETE"
CONNECT: Final = "CONNECT"
# Options kinds by operation; CONNECT requests carry none (the object is the options).
_OPTIONS_KINDS: Final = {CREATE: "CreateOptions", UPDATE: "UpdateOptions", DELETE: "DeleteOptions"}
# Query parameters that CreateOptions/UpdateOptions carry; PatchOptions' `force` is dropped,
# as the apiserver converts patch options to update (or create) options for admission.
_WRITE_OPTION_PARAMS: Final = ("dryRun", "fieldManager", "fieldValidation")
_GO_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})


@dataclass(frozen=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    def as_json(self) -> dict[str, str]:
        return {"group": self.group, "version": self.version, "kind": self.kind}


@dataclass(frozen=True)
class GroupVersionResource:
    group: str
    version: str
    resource: str

    def as_json(self) -> dict[str, str]:
        return {"group": self.group, "version": self.version, "resource": self.resource}


@dataclass(frozen=True)
class AdmissionAttributes:
    """One admission question. `object`/`old_object` are wire-shaped (kind and apiVersion
    set); `object` is None for DELETE, `old_object` None for CREATE and CONNECT."""

    operation: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    subresource: str
    name: str
    namespace: str
    object: Obj | None
    old_object: Obj | None
    options: Obj | None
    dry_run: bool
    user: UserInfo

    def review_request(self, uid: str) -> dict[str, Any]:
        """The AdmissionRequest of an admission.k8s.io/v1 AdmissionReview."""
        user: dict[str, Any] = {"username": self.user.name}
        if self.user.uid:
            user["uid"] = self.user.uid
        if self.user.groups:
            user["groups"] = list(self.user.groups)
        request: dict[str, Any] = {
            "uid": uid,
            "kind": self.kind.as_json(),
            "resource": self.resource.as_json(),
        }
        if self.subresource:
            request["subResource"] = self.subresource
        # kubesim serves one version of each resource, so what was asked for is what the
        # webhook gets (no conversion to an equivalent version).
        request["requestKind"] = self.kind.as_json()
        request["requestResource"] = self.resource.as_json()
        if self.subresource:
            request["requestSubResource"] = self.subresource
        if self.name:
            request["name"] = self.name
        if self.namespace:
            request["namespace"] = self.namespace
        request.update(
            {
                "operation": self.operation,
                "userInfo": user,
                # A RawExtension without an object is written as null, not left out.
                "object": self.object,
                "oldObject": self.old_object,
                "dryRun": self.dry_run,
                "options": self.options,
            }
        )
        return request


def write_attributes(
    rt: ResourceType,
    subresource: str,
    namespace: str,
    new: Obj,
    old: Obj | None,
    query: Mapping[str, str],
    user: UserInfo,
) -> AdmissionAttributes:
    """A CREATE (old is None) or UPDATE of a stored object, just before it is stored."""
    operation = CREATE if old is None else UPDATE
    options: Obj = {"kind": _OPTIONS_KINDS[operation], "apiVersion": "meta.k8s.io/v1"}
    for param in _WRITE_OPTION_PARAMS:
        if query.get(param):
            options[param] = [query[param]] if param == "dryRun" else query[param]
    name = str(new.get("metadata", {}).get("name", ""))
    return _attributes(
        rt,
        subresource,
        namespace,
        name,
        operation,
        new,
        old,
        options,
        bool(query.get("dryRun")),
        user,
    )


def delete_attributes(
    rt: ResourceType,
    namespace: str,
    current: Obj,
    delete_options: Mapping[str, Any] | None,
    query: Mapping[str, str],
    user: UserInfo,
) -> AdmissionAttributes:
    """A DELETE of `current`; the options are the request's DeleteOptions (body and query)."""
    options: Obj = {
        k: v for k, v in (delete_options or {}).items() if k not in ("kind", "apiVersion")
    }
    if query.get("dryRun") and "dryRun" not in options:
        options["dryRun"] = [query["dryRun"]]
    for param in ("gracePeriodSeconds", "propagationPolicy"):
        if query.get(param) and param not in options:
            value = query[param]
            options[param] = (
                int(value) if param == "gracePeriodSeconds" and value.isdigit() else value
            )
    options = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", **options}
    name = str(current["metadata"].get("name", ""))
    dry_run = bool(options.get("dryRun"))
    return _attributes(rt, "", namespace, name, DELETE, None, current, options, dry_run, user)


def connect_attributes(
    rt: ResourceType,
    subresource: str,
    namespace: str,
    name: str,
    query_lines: list[tuple[str, str]],
    user: UserInfo,
) -> AdmissionAttributes:
    """A CONNECT of pods/exec or pods/attach: the object is the PodExecOptions or
    PodAttachOptions decoded from the query (with stdout and stderr defaulted to true, as the
    apiserver's defaulter sets them), before the pod is even looked up."""
    sub = rt.subresource(subresource)
    kind = sub.kind if sub is not None else ""
    values: dict[str, list[str]] = {}
    for key, value in query_lines:
        values.setdefault(key, []).append(value)
    options: Obj = {"kind": kind, "apiVersion": "v1"}
    defaults = {"stdin": False, "stdout": True, "stderr": True, "tty": False}
    for flag, default in defaults.items():
        given = values.get(flag)
        # Booleans are Go booleans; false is left out, as omitempty does.
        if (given[0] in _GO_TRUE) if given else default:
            options[flag] = True
    if values.get("container"):
        options["container"] = values["container"][0]
    if kind == "PodExecOptions":
        options["command"] = values.get("command", [])
    return _attributes(rt, subresource, namespace, name, CONNECT, options, None, None, False, user)


def _attributes(
    rt: ResourceType,
    subresource: str,
    namespace: str,
    name: str,
    operation: str,
    new: Obj | None,
    old: Obj | None,
    options: Obj | None,
    dry_run: bool,
    user: UserInfo,
) -> AdmissionAttributes:
    sub = rt.subresource(subresource) if subresource else None
    if sub is not None and sub.kind:
        kind = GroupVersionKind(sub.group or rt.group, sub.version or rt.version, sub.kind)
    else:
        kind = GroupVersionKind(rt.group, rt.version, rt.kind)
    if rt.plural == "namespaces":
        # The apiserver sets the namespace attribute of a Namespace request to its name.
        namespace = name
    return AdmissionAttributes(
        operation=operation,
        kind=kind,
        resource=GroupVersionResource(rt.group, rt.version, rt.plural),
        subresource=subresource,
        name=name,
        namespace=namespace if rt.namespaced or rt.plural == "namespaces" else "",
        object=_wire(new, rt) if new is not None and operation != CONNECT else new,
        old_object=_wire(old, rt) if old is not None else None,
        options=options,
        dry_run=dry_run,
        user=user,
    )


def _wire(obj: Obj, rt: ResourceType) -> Obj:
    # A snapshot: the registry keeps changing its own copy after admission (resourceVersion).
    wire = copy.deepcopy(obj)
    wire["apiVersion"], wire["kind"] = rt.api_version, rt.kind
    return wire
