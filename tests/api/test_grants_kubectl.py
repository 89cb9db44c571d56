"""The issued kubeconfig, used by the real kubectl, can do exactly what its scanner profile
allows on exactly the granted pods, and nothing else."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
import yaml

from kubesim.pytest_plugin import KubesimHandle
from tests.support.kubectl import kubectl
from tests.support.scangate import Scangate

pytestmark = pytest.mark.anyio

# (verb, resource/name, subresource) on the granted pod web-0.
POD_CHECKS: list[tuple[str, str, str]] = [
    ("get", "pods/web-0", ""),
    ("create", "pods/web-0", "exec"),
    ("get", "pods/web-0", "exec"),
    ("get", "pods/web-0", "log"),
    ("patch", "pods/web-0", "ephemeralcontainers"),
    ("update", "pods/web-0", "ephemeralcontainers"),
    ("create", "pods/web-0", "attach"),
    ("get", "pods/web-0", "attach"),
    ("delete", "pods/web-0", ""),
    ("update", "pods/web-0", ""),
    ("patch", "pods/web-0", ""),
    ("create", "pods/web-0", "portforward"),
    ("create", "pods/web-0", "eviction"),
    ("get", "pods/web-0", "ephemeralcontainers"),
]
PROFILES: dict[str, set[tuple[str, str, str]]] = {
    "exec": {
        ("get", "pods/web-0", ""),
        ("create", "pods/web-0", "exec"),
        ("get", "pods/web-0", "exec"),
        ("get", "pods/web-0", "log"),
    },
    "debug": {
        ("get", "pods/web-0", ""),
        ("patch", "pods/web-0", "ephemeralcontainers"),
        ("update", "pods/web-0", "ephemeralcontainers"),
        ("create", "pods/web-0", "attach"),
        ("get", "pods/web-0", "attach"),
        ("create", "pods/web-0", "exec"),
        ("get", "pods/web-0", "exec"),
        ("get", "pods/web-0", "log"),
    },
    "sidecar": {
        ("get", "pods/web-0", ""),
        ("get", "pods/web-0", "log"),
    },
}
# Never allowed, whatever the profile: other pods, other namespaces, secrets, collections.
ALWAYS_DENIED: list[tuple[str, ...]] = [
    ("get", "pods/web-1"),
    ("get", "pods/db-0"),
    ("create", "pods/db-0", "--subresource=exec"),
    ("get", "pods/web-1", "--subresource=log"),
    ("list", "pods"),
    ("watch", "pods"),
    ("create", "pods"),
    ("deletecollection", "pods"),
    ("get", "secrets"),
    ("get", "secrets/db-credentials"),
    ("list", "secrets"),
    ("get", "pods/api-0", "-n", "orders"),
    ("create", "pods/api-0", "--subresource=exec", "-n", "orders"),
    ("get", "pods/web-0", "-n", "orders"),
    ("get", "serviceaccounts", "-n", "scangate-grants"),
    ("create", "serviceaccounts/token", "-n", "scangate-grants"),
    ("create", "roles"),
    ("create", "rolebindings"),
    ("get", "pods/web-0", "-n", "kube-system"),
]


def can_i(kubeconfig: Path, *args: str) -> str:
    result = kubectl(kubeconfig, "auth", "can-i", *args)
    answer = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert answer in {"yes", "no"}, (args, result.stdout, result.stderr)
    return answer


def check_all(kubeconfig: Path, checks: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    # kubectl starts in ~0.1 s; running a few at a time keeps the matrix quick.
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda args: can_i(kubeconfig, *args), checks))
    return dict(zip(checks, answers, strict=True))


async def issued_kubeconfig(scangate: Scangate, grant_id: str, path: Path) -> Path:
    response = await scangate.kubeconfig(grant_id)
    assert response.status_code == 200, response.text
    return save(path, response.text)


def save(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("scanner", ["exec", "debug", "sidecar"])
async def test_kubeconfig_allows_exactly_the_profile_on_the_granted_pods(
    scangate: Scangate, sim: KubesimHandle, tmp_path: Path, scanner: str
) -> None:
    grant = await scangate.grant(scanner=scanner, pods=["web-0"])
    kubeconfig = await issued_kubeconfig(scangate, grant["id"], tmp_path / "grant.kubeconfig")
    text = (await scangate.kubeconfig(grant["id"])).text
    document = yaml.safe_load(text)
    assert document["current-context"] == f"scangate-{grant['id']}"
    assert document["contexts"][0]["context"]["namespace"] == "payments"
    assert "insecure-skip-tls-verify" not in text

    pod_checks = [
        (verb, target, *([f"--subresource={sub}"] if sub else []))
        for verb, target, sub in POD_CHECKS
    ]
    answers = await anyio.to_thread.run_sync(check_all, kubeconfig, pod_checks + ALWAYS_DENIED)
    allowed = {
        (verb, target, sub)
        for (verb, target, sub), args in zip(POD_CHECKS, pod_checks, strict=True)
        if answers[args] == "yes"
    }
    assert allowed == PROFILES[scanner]
    wrongly_allowed = [args for args in ALWAYS_DENIED if answers[args] != "no"]
    assert wrongly_allowed == []

    got = await anyio.to_thread.run_sync(lambda: kubectl(kubeconfig, "get", "pod", "web-0"))
    assert got.returncode == 0, got.stderr
    assert "web-0" in got.stdout
    other = await anyio.to_thread.run_sync(lambda: kubectl(kubeconfig, "get", "pod", "web-1"))
    assert other.returncode != 0
    assert "forbidden" in other.stderr.lower()


async def test_selector_grant_covers_only_the_running_matches(
    scangate: Scangate, tmp_path: Path
) -> None:
    grant = await scangate.grant(selector="app=web")
    kubeconfig = await issued_kubeconfig(scangate, grant["id"], tmp_path / "grant.kubeconfig")
    answers = await anyio.to_thread.run_sync(
        check_all,
        kubeconfig,
        [("get", "pods/web-0"), ("get", "pods/web-1"), ("get", "pods/web-2"), ("get", "pods/db-0")],
    )
    assert answers == {
        ("get", "pods/web-0"): "yes",
        ("get", "pods/web-1"): "yes",
        ("get", "pods/web-2"): "no",  # Pending at grant time: not covered
        ("get", "pods/db-0"): "no",
    }
