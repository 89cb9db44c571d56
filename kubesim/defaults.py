"""Defaulting applied to new objects, standing in for the apiserver's defaulters and the
controllers a real cluster would run (a Namespace is Active at once, a Pod without status is
Pending, a Service gets a cluster IP, a PersistentVolumeClaim stays Pending).
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Callable
from typing import Any, Final

from kubesim.admission.policy_validation import default_binding, default_policy
from kubesim.errors import FieldError
from kubesim.pod_status import complete_container_statuses, qos_class

Obj = dict[str, Any]

_cluster_ips = itertools.count(1)


def _namespace(obj: Obj) -> list[FieldError]:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    return []


def _pod(obj: Obj) -> list[FieldError]:
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    for container in spec.get("containers") or []:
        if isinstance(container, dict):
            container.setdefault("imagePullPolicy", "IfNotPresent")
    # No kubelet runs here: a pod created through the API starts Pending (the registry resets
    # its status); seeds and tests then write a status such as `phase: Running` through
    # pods/status, as a kubelet would.
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))
    complete_container_statuses(status)
    return []


def _secret(obj: Obj) -> list[FieldError]:
    obj.setdefault("type", "Opaque")
    errors: list[FieldError] = []
    data = obj.get("data") or {}
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            errors.append(FieldError(f"data[{key}]", "illegal base64 data", "<secret data>"))
    # stringData is write-only: it is folded into data, as the apiserver does.
    string_data = obj.pop("stringData", None) or {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    if data:
        obj["data"] = data
    return errors


def _service(obj: Obj) -> list[FieldError]:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None" and not spec.get("clusterIP"):
        n = next(_cluster_ips)
        spec["clusterIP"] = f"10.96.{(n // 250) % 250}.{n % 250 + 1}"
        spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {"loadBalancer": {}})
    return []


def _persistent_volume_claim(obj: Obj) -> list[FieldError]:
    obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    # No provisioner or volume binder runs here: a claim stays Pending, as it does on a
    # cluster without a default StorageClass (Helm installs it without waiting for it).
    obj.setdefault("status", {}).setdefault("phase", "Pending")
    return []


def _deployment(obj: Obj) -> list[FieldError]:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault(
        "strategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    )
    obj.setdefault("status", {})
    return []


def _webhook_configuration(obj: Obj) -> list[FieldError]:
    # Imported here: the admission package builds on validation, which this module precedes.
    from kubesim.admission.configuration import default_webhook_configuration

    return default_webhook_configuration(obj)


_RBAC_GROUP: Final = "rbac.authorization.k8s.io"


def _binding(obj: Obj) -> list[FieldError]:
    # rbac/v1 SetDefaults_*RoleBinding and SetDefaults_Subject: an omitted apiGroup is filled
    # in (the RBAC group for roleRef, User and Group; "" for a ServiceAccount) before
    # validation, so a binding written without it is accepted, not refused.
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = _RBAC_GROUP
    for subject in obj.get("subjects") or []:
        is_person = isinstance(subject, dict) and subject.get("kind") in ("User", "Group")
        if is_person and not subject.get("apiGroup"):
            subject["apiGroup"] = _RBAC_GROUP
    return []


_DEFAULTERS: Final[dict[str, Callable[[Obj], list[FieldError]]]] = {
    "RoleBinding": _binding,
    "ClusterRoleBinding": _binding,
    "ValidatingWebhookConfiguration": _webhook_configuration,
    "Namespace": _namespace,
    "Pod": _pod,
    "Secret": _secret,
    "Service": _service,
    "Deployment": _deployment,
    "PersistentVolumeClaim": _persistent_volume_claim,
    "ValidatingAdmissionPolicy": default_policy,
    "ValidatingAdmissionPolicyBinding": default_binding,
}


def apply_defaults(kind: str, obj: Obj) -> list[FieldError]:
    """Default `obj` in place; returns validation errors found while doing so."""
    defaulter = _DEFAULTERS.get(kind)
    return defaulter(obj) if defaulter is not None else []
