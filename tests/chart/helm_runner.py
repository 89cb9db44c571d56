"""Real Helm (helm-sdkpy) for the chart tests: lint the chart, install it, read what it rendered.

Every action runs in a child process (`_helm_child.py`). helm-sdkpy loads Helm as a Go shared
library, and the Go runtime reads the environment once, from the environment the *process*
started with: `HELM_DRIVER=memory` set through `os.environ` inside pytest is never seen, and Helm
would then store releases as Secrets in the cluster. The child gets `HELM_DRIVER=memory` (and
private HELM_* directories, so nothing touches ~/.cache or ~/.config) from the start. A child
also keeps a crash in Go code from taking the test session down. Each action costs ~0.2 s.

Helm 4's install has no client-only / dry-run mode in helm-sdkpy, so "rendering" means installing
into kubesim and reading the release manifest back. `Lint` needs no cluster but reports only the
path and severity of each problem (its error texts arrive empty), so tests that need Helm's
message install into kubesim.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "scangate"
PRODUCTION_VALUES = CHART_DIR / "ci" / "production-values.yaml"
_CHILD = Path(__file__).with_name("_helm_child.py")

# helm.sh/helm/v4/pkg/chart/v2/lint/support: 1 info, 2 warning, 3 error.
LINT_WARNING = 2
LINT_ERROR = 3


class HelmActionFailed(Exception):
    """Helm refused the action; `message` is Helm's own error text."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class LintMessage:
    severity: int
    path: str


@dataclass(frozen=True)
class LintReport:
    messages: list[LintMessage]

    def paths_with(self, min_severity: int) -> set[str]:
        return {m.path for m in self.messages if m.severity >= min_severity}

    @property
    def failed(self) -> bool:
        return bool(self.paths_with(LINT_ERROR))


@dataclass(frozen=True)
class Release:
    """What `helm install` rendered and sent to the cluster."""

    name: str
    namespace: str
    manifest: str
    notes: str
    objects: list[dict[str, Any]] = field(repr=False)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        matches = [
            o
            for o in self.of_kind(kind)
            if o["metadata"]["name"] == name
            and (namespace is None or o["metadata"].get("namespace") == namespace)
        ]
        assert len(matches) == 1, f"expected one {kind} {namespace}/{name}, found {len(matches)}"
        return matches[0]

    def kinds(self) -> set[str]:
        return {o["kind"] for o in self.objects}


# The chart has no default image (the project publishes none): every install and lint names
# one, as a user must.
IMAGE_VALUES: Final[dict[str, Any]] = {
    "image": {"repository": "registry.example.com/security/scangate"}
}


def default_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return loaded


def production_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PRODUCTION_VALUES.read_text())
    return loaded


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over defaults: maps merge, anything else (lists
    included) replaces, and null deletes the key."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _run_child(request: dict[str, Any], helm_home: Path) -> Any:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("HELM_") and key != "KUBECONFIG"
    }
    env.update(
        HELM_DRIVER="memory",
        HELM_CACHE_HOME=str(helm_home / "cache"),
        HELM_CONFIG_HOME=str(helm_home / "config"),
        HELM_DATA_HOME=str(helm_home / "data"),
    )
    with tempfile.TemporaryDirectory(dir=helm_home) as scratch:
        answer_path = Path(scratch) / "answer.json"
        completed = subprocess.run(
            [sys.executable, str(_CHILD)],
            input=json.dumps({**request, "answer_path": str(answer_path)}),
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            check=False,
        )
        if not answer_path.exists():
            raise RuntimeError(
                f"helm child exited {completed.returncode} without an answer:\n"
                f"{completed.stderr[-4000:]}"
            )
        answer = json.loads(answer_path.read_text())
    if not answer["ok"]:
        raise HelmActionFailed(answer["error"], answer["message"])
    return answer["result"]


def lint_chart(helm_home: Path, values: Mapping[str, Any] | None = None) -> LintReport:
    """`helm lint` of the chart, with `values` coalesced over its defaults.

    helm-sdkpy's Lint takes no values, so a copy of the chart gets the merged values.yaml.
    """
    chart = CHART_DIR
    with tempfile.TemporaryDirectory(dir=helm_home) as scratch:
        if values is not None:
            chart = Path(scratch) / "scangate"
            shutil.copytree(CHART_DIR, chart)
            merged = merge_values(default_values(), values)
            (chart / "values.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
        result = _run_child({"action": "lint", "chart": str(chart)}, helm_home)
    return LintReport([LintMessage(m["Severity"], m["Path"]) for m in result.get("Messages") or []])


def install_chart(
    helm_home: Path,
    *,
    kubeconfig: Path,
    values: Mapping[str, Any] | None = None,
    release: str = "scangate",
    namespace: str = "scangate",
    skip_schema_validation: bool = False,
) -> Release:
    """`helm install` (no --wait) of the chart into the cluster of `kubeconfig`.

    The release namespace must exist: Helm's --create-namespace path always fetches the
    server's OpenAPI document to validate the Namespace it creates.
    """
    result = _run_child(
        {
            "action": "install",
            "chart": str(CHART_DIR),
            "release": release,
            "namespace": namespace,
            "kubeconfig": str(kubeconfig),
            "values": dict(values or {}),
            "skip_schema_validation": skip_schema_validation,
        },
        helm_home,
    )
    return _release(result)


def install_then_upgrade_chart(
    helm_home: Path,
    *,
    kubeconfig: Path,
    values: Mapping[str, Any],
    upgrades: list[Mapping[str, Any]],
    release: str = "scangate",
    namespace: str = "scangate",
) -> list[Release]:
    """`helm install`, then `helm upgrade` with each of `upgrades` (full values, not deltas),
    in one Helm process; the releases in that order."""
    results = _run_child(
        {
            "action": "install_then_upgrade",
            "chart": str(CHART_DIR),
            "release": release,
            "namespace": namespace,
            "kubeconfig": str(kubeconfig),
            "values": dict(values),
            "upgrades": [dict(u) for u in upgrades],
        },
        helm_home,
    )
    return [_release(result) for result in results]


def _release(result: dict[str, Any]) -> Release:
    manifest = result.get("manifest") or ""
    info = result.get("info") or {}
    objects = [doc for doc in yaml.safe_load_all(manifest) if doc]
    return Release(
        name=result["name"],
        namespace=result["namespace"],
        manifest=manifest,
        notes=info.get("notes") or "",
        objects=objects,
    )
