"""The demo scan, end to end: `scangate serve --demo` → request a grant → fetch its kubeconfig
→ run the InSpec-style profile in examples/demo-scan with kubectl through that kubeconfig →
revoke → the scanner is refused.

The demo's seed gives its pods files (kubesim's `kubesim.dev/files` annotation): web-0 is
hardened, web-1 is a stock image with an sshd configuration, so the same profile passes on one
and finds exactly three problems on the other.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SCAN = REPO / "examples" / "demo-scan" / "scan.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Demo:
    def __init__(self, base: str, directory: Path, banner: str) -> None:
        self.base = base
        self.banner = banner
        self.auth = {"Authorization": "Bearer " + (directory / "api-key").read_text().strip()}

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.base + path, headers=self.auth, json=body, timeout=30)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.auth, timeout=30)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    banner = []
    for line in process.stdout:  # printed before the server starts
        banner.append(line)
        if line.startswith("Stop with Ctrl-C"):
            break
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the demo did not start:\n" + "".join(banner))
    yield Demo(base, tmp_path / ".scangate-demo", "".join(banner))
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def scan(kubeconfig: Path, *pods: str, reporter: str = "json") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCAN), "--kubeconfig", str(kubeconfig), "-n", "shop", "-c", "app",
         "--reporter", reporter, *pods],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_demo_scan_runs_through_a_grant_and_is_refused_after_revocation(
    demo: Demo, tmp_path: Path
) -> None:
    created = demo.post("/v1/grants", {"namespace": "shop", "pods": ["web-0", "web-1"],
                                       "scanner": "exec", "reason": "demo scan"})  # fmt: skip
    assert created.status_code == 201, created.text
    grant_id = created.json()["id"]
    kubeconfig = tmp_path / "grant.kubeconfig"
    kubeconfig.write_text(demo.get(f"/v1/grants/{grant_id}/kubeconfig").text)

    # The line the demo prints, run as printed (K="kubectl --kubeconfig grant.kubeconfig -n shop").
    assert "$K exec web-0 -- cat /etc/os-release" in demo.banner
    shown = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "-n", "shop", "exec", "web-0", "--",
         "cat", "/etc/os-release"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "ID=debian" in shown.stdout.splitlines(), shown.stderr

    report = scan(kubeconfig, "web-0", "web-1")

    assert report.returncode == 100, report.stderr  # InSpec's "some controls failed"
    targets = {t["target"]: t["controls"] for t in json.loads(report.stdout)["targets"]}
    hardened = targets["k8s-container://shop/web-0/app"]
    stock = targets["k8s-container://shop/web-1/app"]
    assert {c["id"]: c["status"] for c in hardened} == {
        "os-01": "passed",
        "accounts-01": "passed",
        "accounts-02": "passed",
        "files-01": "passed",
        "ssh-01": "passed",
        "nginx-01": "passed",
    }
    assert {c["id"]: c["message"] for c in stock if c["status"] == "failed"} == {
        "accounts-01": "expected exit status 0, got 1",
        "ssh-01": "expected exit status 0, got 1",
        "nginx-01": "expected exit status 0, got 1",
    }

    cli = scan(kubeconfig, "web-0", reporter="cli")
    assert cli.returncode == 0
    assert "  \u2714  ssh-01: No SSH daemon is configured in the container" in cli.stdout
    assert "Profile Summary: 6 successful controls, 0 control failures" in cli.stdout

    outside = scan(kubeconfig, "db-0")
    assert outside.returncode == 1
    assert 'pods "db-0" is forbidden' in outside.stderr

    revoked = demo.post(f"/v1/grants/{grant_id}/revoke", {})
    assert revoked.json()["status"] == "revoked"
    after = scan(kubeconfig, "web-0")

    assert after.returncode == 1
    # Denied as a real cluster denies: Forbidden while a cached authentication of the token
    # meets the deleted RoleBinding, Unauthorized once the cache lets go.
    assert after.stderr.startswith("k8s-container://shop/web-0/app: cannot run commands: ")
    assert "(Forbidden)" in after.stderr or "(Unauthorized)" in after.stderr
