"""Pod status as kube-apiserver stores it.

Two rules of the pod registry (pkg/registry/core/pod/strategy.go) and of the Go round trip:

- A pod created through the API starts `Pending` with its QoS class, whatever status the client
  sent (PrepareForCreate). Status is written afterwards by the kubelet through `pods/status`;
  kubesim's seeding plays the kubelet and writes a manifest's status that way.
- Every object is decoded into Go structs and encoded again, so a container status always
  carries the fields Go writes without `omitempty` (`name`, `ready`, `restartCount`, `image`,
  `imageID`), at their zero values when nobody set them. Clients rely on that: the official
  Python client refuses a container status without `image`, `imageID` or `restartCount`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Final

Obj = dict[str, Any]

_STATUS_LISTS: Final = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
# ContainerStatus fields serialized even when empty, with their Go zero values.
_ALWAYS_WRITTEN: Final[dict[str, Any]] = {
    "name": "",
    "ready": False,
    "restartCount": 0,
    "image": "",
    "imageID": "",
}
_QOS_RESOURCES: Final = ("cpu", "memory")
_QUANTITY: Final = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIXES: Final[dict[str, int | Decimal]] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def complete_container_statuses(status: Obj) -> None:
    """Fill the always-written ContainerStatus fields with Go's zero values (in place)."""
    for key in _STATUS_LISTS:
        for entry in status.get(key) or []:
            if isinstance(entry, dict):
                for field, zero in _ALWAYS_WRITTEN.items():
                    if entry.get(field) is None:
                        entry[field] = zero


def _quantity(value: Any) -> Decimal | None:
    match = _QUANTITY.match(str(value).strip())
    if match is None or match.group(2) not in _SUFFIXES:
        return None
    try:
        return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2)])
    except InvalidOperation:
        return None


def qos_class(spec: Obj) -> str:
    """qos.GetPodQOS: BestEffort without any cpu/memory request or limit; Guaranteed when every
    container limits both and requests (if given) equal the limits; Burstable otherwise."""
    containers = [
        c
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
        if isinstance(c, dict)
    ]
    any_set, guaranteed = False, True
    for container in containers:
        resources = container.get("resources") or {}
        requests = {
            k: v for k, v in (resources.get("requests") or {}).items() if k in _QOS_RESOURCES
        }
        limits = {k: v for k, v in (resources.get("limits") or {}).items() if k in _QOS_RESOURCES}
        any_set = any_set or bool(requests or limits)
        if set(limits) != set(_QOS_RESOURCES):
            guaranteed = False
        for name, requested in requests.items():
            if name in limits and _quantity(requested) != _quantity(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def prepare_pod_for_create(pod: Obj) -> None:
    """PrepareForCreate: the status a client sends is replaced (in place)."""
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod.get("spec") or {})}
