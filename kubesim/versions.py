"""The Kubernetes release kubesim plays (`--kube-version`): what `/version` reports and the few
behaviours that differ between the releases it supports.

Only differences a client can observe and that scangate depends on are modelled. Today that is
one: from 1.35 a WebSocket upgrade of pods/exec, attach and portforward (a GET, authorized as
`get`) must also be allowed to `create` the subresource (the
`AuthorizePodWebsocketUpgradeCreatePermission` feature gate, beta and on by default in 1.35,
kubernetes/kubernetes#134577).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

DEFAULT_KUBE_VERSION: Final = "1.35"
# minor -> (Go version, release date of its .0). Approximate and cosmetic: clients decide on
# `major`/`minor`/`gitVersion` only.
_RELEASES: Final = {
    30: ("go1.22.2", "2024-04-17T00:00:00Z"),
    31: ("go1.22.5", "2024-08-13T00:00:00Z"),
    32: ("go1.23.3", "2024-12-11T00:00:00Z"),
    33: ("go1.24.2", "2025-04-23T00:00:00Z"),
    34: ("go1.24.6", "2025-08-27T00:00:00Z"),
    35: ("go1.25.5", "2025-12-17T00:00:00Z"),
}
SUPPORTED_KUBE_VERSIONS: Final = tuple(f"1.{minor}" for minor in _RELEASES)
_VERSION: Final = re.compile(r"v?1\.(\d+)")
_WEBSOCKET_CREATE_CHECK_SINCE: Final = 35


class UnsupportedKubeVersion(ValueError):
    """A `--kube-version` kubesim does not model; the message lists the ones it does."""


@dataclass(frozen=True)
class KubeVersion:
    minor: int

    @classmethod
    def parse(cls, text: str) -> KubeVersion:
        """`1.32` or `v1.32`; anything else, or a release outside the supported range, is
        refused rather than approximated (a test must know which behaviour it gets)."""
        match = _VERSION.fullmatch(text.strip())
        if match is None or int(match.group(1)) not in _RELEASES:
            raise UnsupportedKubeVersion(
                f"unsupported Kubernetes version {text!r}: kubesim models "
                f"{', '.join(SUPPORTED_KUBE_VERSIONS)}"
            )
        return cls(int(match.group(1)))

    def __str__(self) -> str:
        return f"1.{self.minor}"

    @property
    def websocket_upgrade_needs_create(self) -> bool:
        """Whether a streaming upgrade (a GET) must also be allowed to `create`."""
        return self.minor >= _WEBSOCKET_CREATE_CHECK_SINCE

    def version_info(self) -> dict[str, Any]:
        """The `/version` document (version.Info) of the release's first patch."""
        go_version, build_date = _RELEASES[self.minor]
        return {
            "major": "1",
            "minor": str(self.minor),
            "gitVersion": f"v1.{self.minor}.0",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": build_date,
            "goVersion": go_version,
            "compiler": "gc",
            "platform": "linux/amd64",
        }
