"""Server-side printing: the `Table` responses `kubectl get` asks for.

kubectl only prints what the server's Table says, so pods get the familiar NAME / READY /
STATUS / RESTARTS / AGE columns and everything else NAME / AGE.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubesim.resources import ResourceType


def _age(timestamp: str, now: float) -> str:
    try:
        created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return "<unknown>"
    seconds = max(0, int(now - created))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * 2 or (unit == "m" and seconds >= 120):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _pod_cells(obj: Mapping[str, Any]) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    phase = status.get("phase", "Pending")
    if statuses:
        ready = sum(1 for s in statuses if s.get("ready"))
    else:
        # No kubelet reports container states here: a Running pod counts as fully ready.
        ready = len(containers) if phase == "Running" else 0
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    return [f"{ready}/{len(containers)}", phase, restarts]


_COLUMNS: dict[str, list[dict[str, Any]]] = {
    "Pod": [
        {
            "name": "Ready",
            "type": "string",
            "format": "",
            "priority": 0,
            "description": "The aggregate readiness state of this pod for accepting traffic.",
        },
        {
            "name": "Status",
            "type": "string",
            "format": "",
            "priority": 0,
            "description": "The aggregate status of the containers in this pod.",
        },
        {
            "name": "Restarts",
            "type": "string",
            "format": "",
            "priority": 0,
            "description": "The number of times the containers in this pod have been restarted.",
        },
    ],
    "ValidatingWebhookConfiguration": [
        {
            "name": "Webhooks",
            "type": "integer",
            "format": "",
            "priority": 0,
            "description": "Webhooks indicates the number of webhooks registered in this "
            "configuration.",
        },
    ],
}


def to_table(
    rt: ResourceType, objects: list[dict[str, Any]], list_meta: dict[str, Any], now: float
) -> dict[str, Any]:
    columns = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "priority": 0,
            "description": "Name must be unique within a namespace.",
        },
        *_COLUMNS.get(rt.kind, []),
        {
            "name": "Age",
            "type": "string",
            "format": "",
            "priority": 0,
            "description": "CreationTimestamp is a timestamp representing the server time when "
            "this object was created.",
        },
    ]
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        extra: list[Any] = []
        if rt.kind == "Pod":
            extra = _pod_cells(obj)
        elif rt.kind == "ValidatingWebhookConfiguration":
            extra = [len(obj.get("webhooks") or [])]
        cells = [meta.get("name", ""), *extra, _age(meta.get("creationTimestamp", ""), now)]
        partial = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
        }
        rows.append({"cells": cells, "object": partial})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {k: v for k, v in list_meta.items() if k in ("resourceVersion", "continue")},
        "columnDefinitions": columns,
        "rows": rows,
    }
