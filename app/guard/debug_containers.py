"""Judging the ephemeral (debug) containers an UPDATE of `pods/ephemeralcontainers` adds.

Only containers whose name is not in oldObject are judged: ephemeral containers can never be
changed or removed once added, so one admitted earlier (under an older policy) is not judged
again, and a request that adds nothing new is not refused for what is already there.

The rules close what RBAC on `pods/ephemeralcontainers` leaves open:
- the image must be one of the policy's `debug_images`;
- no privileged mode, no privilege escalation (it must be explicitly off, as Pod Security's
  `restricted` level requires, because the runtime's default is on), no added capabilities,
  no `procMount: Unmasked`;
- no root unless the policy says `debug_allow_root`; as the kubelet does, the container's
  securityContext wins over the pod's, and `runAsNonRoot: true` without a user means the image's
  user, which the kubelet refuses to start as root;
- no env or envFrom from Secrets or ConfigMaps: the kubelet would hand the container any Secret
  of the namespace, which the grant has no right to read; for the same reason no mounts of the
  pod's Secret, ConfigMap or projected volumes (the latter hold the pod's ServiceAccount token);
- `targetContainerName` must be a container the grant may reach, and when the grant is limited
  to some containers the pod must not share one process namespace (the debug container would
  see every container's processes and files through /proc).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.guard.images import image_allowed
from app.settings_sections import PolicyConfig

_SHARED_VOLUME_SOURCES = ("secret", "configMap", "projected")


@dataclass(frozen=True)
class DebugContainerVerdict:
    name: str
    problems: tuple[str, ...]
    # What the audit event records about the container.
    summary: dict[str, Any]


def new_ephemeral_containers(pod: dict[str, Any], old_pod: dict[str, Any]) -> list[dict[str, Any]]:
    existing = {c.get("name") for c in _ephemeral(old_pod)}
    return [c for c in _ephemeral(pod) if c.get("name") not in existing]


def judge_debug_container(
    container: dict[str, Any],
    pod: dict[str, Any],
    policy: PolicyConfig,
    allowed_containers: Sequence[str] | None,
) -> DebugContainerVerdict:
    spec = _dict(pod.get("spec"))
    pod_security = _dict(spec.get("securityContext"))
    security = _dict(container.get("securityContext"))
    capabilities = _dict(security.get("capabilities"))
    added = [str(c) for c in capabilities.get("add") or []]
    image = str(container.get("image") or "")
    target = container.get("targetContainerName")
    run_as_user = _first_set(security, pod_security, "runAsUser")
    run_as_non_root = _first_set(security, pod_security, "runAsNonRoot")

    problems: list[str] = []
    if not policy.debug_images:
        problems.append(
            f"policy {policy.name!r} allows no debug images (its debug_images list is empty)"
        )
    elif not image_allowed(image, policy.debug_images):
        problems.append(
            f"image {image!r} is not allowed by policy {policy.name!r} "
            f"(debug_images: {', '.join(policy.debug_images)})"
        )
    if security.get("privileged") is True:
        problems.append("securityContext.privileged is true; debug containers are never privileged")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(
            "securityContext.allowPrivilegeEscalation must be false "
            "(kubectl debug --profile=restricted sets it)"
        )
    if added:
        problems.append(
            f"securityContext.capabilities.add {', '.join(added)}: "
            "debug containers may not add capabilities"
        )
    if security.get("procMount") == "Unmasked":
        problems.append("securityContext.procMount is Unmasked; only Default is allowed")
    if not policy.debug_allow_root and _runs_as_root(run_as_user, run_as_non_root):
        problems.append(
            "the container would run as root: set securityContext.runAsNonRoot: true or a "
            f"non-zero runAsUser (policy {policy.name!r} does not set debug_allow_root)"
        )
    problems.extend(_env_problems(container))
    problems.extend(_volume_problems(container, spec))
    if allowed_containers is not None:
        if target and target not in allowed_containers:
            problems.append(
                f"targetContainerName {target!r} is not one of the grant's containers "
                f"({', '.join(allowed_containers)})"
            )
        if spec.get("shareProcessNamespace") is True:
            problems.append(
                "the pod shares one process namespace, so a debug container would see every "
                "container, but the grant is limited to " + ", ".join(allowed_containers)
            )
    summary = {
        "container": container.get("name"),
        "image": image,
        "target_container": target,
        "security": {
            "privileged": security.get("privileged"),
            "allowPrivilegeEscalation": security.get("allowPrivilegeEscalation"),
            "runAsNonRoot": run_as_non_root,
            "runAsUser": run_as_user,
            "capabilities_add": added,
            "procMount": security.get("procMount"),
        },
    }
    return DebugContainerVerdict(str(container.get("name") or ""), tuple(problems), summary)


def _runs_as_root(run_as_user: Any, run_as_non_root: Any) -> bool:
    if isinstance(run_as_user, int):
        return run_as_user == 0
    # No user set: the image's user, which is root unless runAsNonRoot makes the kubelet
    # refuse to start it as root.
    return run_as_non_root is not True


def _env_problems(container: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for index, env in enumerate(container.get("env") or []):
        source = _dict(_dict(env).get("valueFrom"))
        for ref, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if ref in source:
                problems.append(
                    f"env[{index}] ({_dict(env).get('name')}) takes its value from {kind} "
                    f"{_dict(source[ref]).get('name')!r} (valueFrom.{ref}); debug containers "
                    "may not read Secrets or ConfigMaps"
                )
    for index, env_from in enumerate(container.get("envFrom") or []):
        for ref, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            if ref in _dict(env_from):
                problems.append(
                    f"envFrom[{index}] takes {kind} {_dict(env_from[ref]).get('name')!r} "
                    f"({ref}); debug containers may not read Secrets or ConfigMaps"
                )
    return problems


def _volume_problems(container: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    volumes = {_dict(v).get("name"): _dict(v) for v in spec.get("volumes") or []}
    problems: list[str] = []
    for mount in container.get("volumeMounts") or []:
        name = _dict(mount).get("name")
        volume = volumes.get(name, {})
        source = next((s for s in _SHARED_VOLUME_SOURCES if s in volume), None)
        if source is not None:
            problems.append(
                f"volumeMounts mounts {source} volume {name!r}; debug containers may not mount "
                "the pod's Secret, ConfigMap or projected (ServiceAccount token) volumes"
            )
    return problems


def _first_set(container_level: dict[str, Any], pod_level: dict[str, Any], key: str) -> Any:
    value = container_level.get(key)
    return pod_level.get(key) if value is None else value


def _ephemeral(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [_dict(c) for c in _dict(pod.get("spec")).get("ephemeralContainers") or []]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
