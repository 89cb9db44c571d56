"""Scanner profiles: the RBAC rule template of each scanning approach (the README's
"Scanner profiles" table).

Every rule carries `resourceNames`: RBAC has no label selectors, and a rule without
`resourceNames` would cover every pod in the namespace (the failure scangate exists to prevent).
Note that `resourceNames` cannot restrict `list`/`watch`/`create` of the collection itself, which
is why no profile grants those on `pods`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

SCANNER_PROFILES: Final = ("exec", "debug", "sidecar")

# (resource, verbs) per profile, all in the core API group "".
# `get` sits beside `create` on pods/exec and pods/attach because kubectl >= 1.30 speaks
# WebSockets, whose upgrade is a GET that clusters before 1.35 authorize as `get`; 1.35+ want
# `create`. Both are needed to work on every supported cluster.
_PROFILE_RESOURCES: Final[dict[str, tuple[tuple[str, tuple[str, ...]], ...]]] = {
    "exec": (
        ("pods", ("get",)),
        ("pods/exec", ("create", "get")),
        ("pods/log", ("get",)),
    ),
    "debug": (
        ("pods", ("get",)),
        ("pods/ephemeralcontainers", ("patch", "update")),
        ("pods/attach", ("create", "get")),
        ("pods/exec", ("create", "get")),
        ("pods/log", ("get",)),
    ),
    "sidecar": (
        ("pods", ("get",)),
        ("pods/log", ("get",)),
    ),
}


def profile_rules(scanner: str, pod_names: Sequence[str]) -> list[dict[str, Any]]:
    """RBAC PolicyRule dicts (API field names) for `scanner`, restricted to `pod_names`.

    Raises ValueError for an unknown scanner or an empty pod list: an empty `resourceNames`
    means "all names" to the RBAC authorizer, so it must never reach the cluster.
    """
    try:
        resources = _PROFILE_RESOURCES[scanner]
    except KeyError:
        raise ValueError(f"unknown scanner profile {scanner!r}") from None
    names = list(dict.fromkeys(pod_names))  # dedupe, keep the caller's order
    if not names or any(not name for name in names):
        raise ValueError("a scanner profile needs at least one pod name, and no empty names")
    return [
        {
            "apiGroups": [""],
            "resources": [resource],
            "verbs": list(verbs),
            "resourceNames": list(names),
        }
        for resource, verbs in resources
    ]
