"""Validating admission: the step between authorization and storage (or an opened stream).

kube-apiserver runs its validating admission plugins in a fixed order; of those kubesim
models, ValidatingAdmissionPolicy comes before ValidatingAdmissionWebhook (the order of
kube-apiserver's AllOrderedPlugins), and `admit` runs them in that order.

kubesim's storage path is synchronous and admission may call webhooks over the network, so a
request is admitted in rounds: at its point of admission the request path calls
`RequestAdmission.check(attributes)`, which raises `AdmissionPending` unless admission has
already allowed exactly these attributes; the app awaits `admit(...)` and replays the request.
Nothing is stored before the check passes, so a replay repeats no side effect, and a replay
that now sees a different object (a concurrent write) is admitted again, as the apiserver
re-runs admission when its storage update retries.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
from typing import TYPE_CHECKING, Any, Final

from kubesim import errors
from kubesim.admission.attributes import (
    CONNECT,
    CREATE,
    DELETE,
    UPDATE,
    AdmissionAttributes,
    GroupVersionKind,
    GroupVersionResource,
    connect_attributes,
    delete_attributes,
    subresource_create_attributes,
    write_attributes,
)
from kubesim.resources import lookup

if TYPE_CHECKING:
    from kubesim.cluster import Cluster

__all__ = [
    "CONNECT",
    "CREATE",
    "DELETE",
    "MAX_ROUNDS",
    "UPDATE",
    "AdmissionAttributes",
    "AdmissionPending",
    "GroupVersionKind",
    "GroupVersionResource",
    "RequestAdmission",
    "admission_configured",
    "admit",
    "admit_pending",
    "conflict_after_rounds",
    "connect_attributes",
    "delete_attributes",
    "subresource_create_attributes",
    "write_attributes",
]

# Fields the server generates before admission that a replay generates anew; the replay keeps
# the values admission saw, so what is stored is what the webhooks judged.
_GENERATED_FIELDS: Final = ("uid", "creationTimestamp")
# A request whose object keeps changing under it is answered 409 after this many rounds.
MAX_ROUNDS: Final = 5


class AdmissionPending(Exception):
    """Raised at a point of admission: admit each of `questions`, then replay the request
    (a deletecollection asks about every object it would delete at once)."""

    def __init__(self, questions: list[AdmissionAttributes]) -> None:
        super().__init__(", ".join(q.operation for q in questions))
        self.questions = questions


class RequestAdmission:
    """The admission state of one API request across its rounds."""

    def __init__(self, cluster: Cluster, enabled: bool) -> None:
        self.cluster = cluster
        # False when no configuration exists at all: nothing is ever pending.
        self.enabled = enabled
        self._allowed: list[AdmissionAttributes] = []
        # Warnings of the admission that allowed the request, for its `Warning` header.
        self.warnings: list[str] = []

    def allowed(self, attributes: AdmissionAttributes) -> None:
        self._allowed.append(attributes)

    def check(self, attributes: AdmissionAttributes, target: dict[str, Any] | None = None) -> None:
        """Pass when admission already allowed these attributes in an earlier round.

        `target` is the object about to be stored by a CREATE: it gets the uid, timestamp and
        generated name that admission saw in the round that asked."""
        if not self.enabled:
            return
        earlier = self._earlier(attributes)
        if earlier is None:
            raise AdmissionPending([attributes])
        if target is not None:
            self._keep_generated(earlier, attributes, target)

    def check_all(self, questions: list[AdmissionAttributes]) -> None:
        """Pass when admission already allowed every one of `questions`."""
        if not self.enabled:
            return
        pending = [q for q in questions if self._earlier(q) is None]
        if pending:
            raise AdmissionPending(pending)

    def _earlier(self, attributes: AdmissionAttributes) -> AdmissionAttributes | None:
        return next((a for a in self._allowed if _same_question(a, attributes)), None)

    def _keep_generated(
        self, earlier: AdmissionAttributes, now: AdmissionAttributes, target: dict[str, Any]
    ) -> None:
        seen = (earlier.object or {}).get("metadata") or {}
        meta = target.get("metadata")
        if now.operation != CREATE or not isinstance(meta, dict):
            return
        for key in _GENERATED_FIELDS:
            if key in seen:
                meta[key] = seen[key]
        if seen.get("name") and seen["name"] != meta.get("name"):
            rt = lookup(now.resource.group, now.resource.version, now.resource.resource)
            namespace = now.namespace if rt is not None and rt.namespaced else ""
            if rt is not None and self.cluster.store.exists(rt, namespace, seen["name"]):
                raise errors.already_exists(rt, seen["name"])
            meta["name"] = seen["name"]


def admission_configured(cluster: Cluster) -> bool:
    """Whether any validating admission configuration exists (the fast path when none)."""
    return bool(cluster.webhooks.configured()) or _policies_configured(cluster)


async def admit_pending(
    cluster: Cluster, admission: RequestAdmission, pending: AdmissionPending
) -> None:
    """Admit what a round asked about, so the next round passes its check."""
    for question in pending.questions:
        admission.warnings += await admit(cluster, question)
        admission.allowed(question)


async def admit(cluster: Cluster, attributes: AdmissionAttributes) -> list[str]:
    """Run validating admission for `attributes`: the warnings for the response, or the
    ApiError that refuses the request."""
    warnings: list[str] = []
    policies = _policies_module()
    if policies is not None:
        warnings += policies.validate(cluster, attributes) or []
    warnings += await cluster.webhooks.dispatch(attributes)
    return warnings


@functools.cache
def _policies_module() -> Any:
    # ValidatingAdmissionPolicy lives in kubesim.admission.policies (another change, merged
    # separately); until it exists admission runs the webhooks alone.
    try:
        return importlib.import_module("kubesim.admission.policies")
    except ModuleNotFoundError:
        return None


def _policies_configured(cluster: Cluster) -> bool:
    policies = _policies_module()
    return bool(policies is not None and policies.configured(cluster))


def _comparable(attributes: AdmissionAttributes) -> AdmissionAttributes:
    obj = attributes.object
    if attributes.operation != CREATE or obj is None:
        return attributes
    stripped = copy.deepcopy(obj)
    meta = stripped.get("metadata") or {}
    for key in _GENERATED_FIELDS:
        meta.pop(key, None)
    name = attributes.name
    if meta.get("generateName"):
        meta.pop("name", None)
        name = ""
    return dataclasses.replace(attributes, object=stripped, name=name)


def _same_question(earlier: AdmissionAttributes, now: AdmissionAttributes) -> bool:
    return _comparable(earlier) == _comparable(now)


def conflict_after_rounds() -> errors.ApiError:
    return errors.ApiError(
        409,
        "Conflict",
        "Operation cannot be fulfilled: the object kept changing while it was being admitted",
        {},
    )
