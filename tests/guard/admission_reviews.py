"""AdmissionReview documents shaped exactly as kube-apiserver sends them (admission.k8s.io/v1,
staging/src/k8s.io/api/admission/v1/types.go; filled in by apiserver's admissionreview.go):
CONNECT of pods/exec and pods/attach carry PodExecOptions / PodAttachOptions and no oldObject
or options; UPDATE of pods/ephemeralcontainers carries the new and old Pod and UpdateOptions.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

GRANTS_NAMESPACE = "scangate-grants"


def grant_username(grant_id: str) -> str:
    return f"system:serviceaccount:{GRANTS_NAMESPACE}:scangate-{grant_id}"


def _user(username: str) -> dict[str, Any]:
    namespace = username.split(":")[2] if username.startswith("system:serviceaccount:") else ""
    groups = ["system:authenticated"]
    if namespace:
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", *groups]
    return {
        "username": username,
        "uid": str(uuid.uuid4()),
        "groups": groups,
        "extra": {"authentication.kubernetes.io/credential-id": ["JTI=" + str(uuid.uuid4())]},
    }


def _gvk(kind: str) -> dict[str, str]:
    return {"group": "", "version": "v1", "kind": kind}


_PODS = {"group": "", "version": "v1", "resource": "pods"}


def connect_review(
    sub_resource: str,
    username: str,
    *,
    pod: str = "web-0",
    namespace: str = "payments",
    container: str | None = "app",
    command: list[str] | None = None,
) -> dict[str, Any]:
    kind = "PodExecOptions" if sub_resource == "exec" else "PodAttachOptions"
    options: dict[str, Any] = {
        "kind": kind,
        "apiVersion": "v1",
        "stdin": True,
        "stdout": True,
        "tty": True,
    }
    if container is not None:
        options["container"] = container
    if sub_resource == "exec":
        options["command"] = command if command is not None else ["sh"]
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": _gvk(kind),
            "resource": _PODS,
            "subResource": sub_resource,
            "requestKind": _gvk(kind),
            "requestResource": _PODS,
            "requestSubResource": sub_resource,
            "name": pod,
            "namespace": namespace,
            "operation": "CONNECT",
            "userInfo": _user(username),
            "object": options,
            "oldObject": None,
            "dryRun": False,
            "options": None,
        },
    }


def pod(name: str = "web-0", namespace: str = "payments", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "containers": [
            {"name": "app", "image": "registry.example.com/web:1.0"},
            {"name": "db-proxy", "image": "registry.example.com/proxy:2.1"},
        ],
        "restartPolicy": "Always",
    }
    body.update(spec)
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": body,
        "status": {"phase": "Running"},
    }


def restricted_debug_container(name: str = "debugger-x7k2p", **fields: Any) -> dict[str, Any]:
    """What `kubectl debug --profile=restricted --image=busybox:1.36 --target=app` sends."""
    container: dict[str, Any] = {
        "name": name,
        "image": "busybox:1.36",
        "targetContainerName": "app",
        "stdin": True,
        "tty": True,
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    container.update(fields)
    return container


def ephemeral_review(
    username: str,
    *new_containers: dict[str, Any],
    old_pod: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    old = old_pod if old_pod is not None else pod()
    new = copy.deepcopy(old)
    new["spec"].setdefault("ephemeralContainers", []).extend(copy.deepcopy(list(new_containers)))
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": _gvk("Pod"),
            "resource": _PODS,
            "subResource": "ephemeralcontainers",
            "requestKind": _gvk("Pod"),
            "requestResource": _PODS,
            "requestSubResource": "ephemeralcontainers",
            "name": old["metadata"]["name"],
            "namespace": old["metadata"]["namespace"],
            "operation": "UPDATE",
            "userInfo": _user(username),
            "object": new,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {
                "kind": "UpdateOptions",
                "apiVersion": "meta.k8s.io/v1",
                "fieldManager": "kubectl-debug",
            },
        },
    }
