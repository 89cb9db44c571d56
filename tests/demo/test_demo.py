"""`scangate serve --demo`: one command gives a working scangate in front of a simulated cluster.

The test runs the demo exactly as a user would (a subprocess in an empty directory), follows the
printed instructions with httpx and the real kubectl, and checks that stopping the demo also
stops its simulated cluster.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "-n", "shop", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
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
        pytest.fail(f"demo did not start: {process.stdout.read() if process.stdout else ''}")
    yield base, tmp_path / ".scangate-demo", process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_demo_grant_flow_works_with_kubectl_and_stops_cleanly(
    demo: tuple[str, Path, subprocess.Popen[str]], tmp_path: Path
) -> None:
    base, directory, process = demo
    auth = {"Authorization": "Bearer " + (directory / "api-key").read_text().strip()}
    assert (directory / "api-key").stat().st_mode & 0o777 == 0o600

    created = httpx.post(
        f"{base}/v1/grants",
        headers=auth,
        json={"namespace": "shop", "pods": ["web-0"], "scanner": "exec"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    grant = created.json()
    assert grant["status"] == "active"
    assert grant["pods"] == ["web-0"]

    kubeconfig = tmp_path / "grant.kubeconfig"
    fetched = httpx.get(f"{base}/v1/grants/{grant['id']}/kubeconfig", headers=auth, timeout=30)
    assert fetched.status_code == 200, fetched.text
    kubeconfig.write_text(fetched.text)

    can_exec = _kubectl(kubeconfig, "auth", "can-i", "create", "pods/web-0", "--subresource=exec")
    other_pod = _kubectl(kubeconfig, "auth", "can-i", "create", "pods/db-0", "--subresource=exec")
    secrets = _kubectl(kubeconfig, "auth", "can-i", "get", "secrets")
    assert (can_exec.stdout.strip(), other_pod.stdout.strip(), secrets.stdout.strip()) == (
        "yes",
        "no",
        "no",
    )
    pod = _kubectl(kubeconfig, "get", "pod", "web-0", "-o", "name")
    assert pod.stdout.strip() == "pod/web-0", pod.stderr

    revoke_url = f"{base}/v1/grants/{grant['id']}/revoke"
    revoked = httpx.post(revoke_url, headers=auth, json={}, timeout=30)
    assert revoked.json()["status"] == "revoked"
    after = _kubectl(kubeconfig, "get", "pod", "web-0")
    assert after.returncode != 0
    assert "Unauthorized" in after.stderr

    cluster_url = re.search(r"simulated cluster: (\S+)", _read_banner(process))
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert cluster_url is not None
    host, port = cluster_url.group(1).removeprefix("https://").split(":")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2).close()


def _read_banner(process: subprocess.Popen[str]) -> str:
    """The demo's printed instructions (everything up to the 'Stop with Ctrl-C' line)."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Stop with Ctrl-C"):
            break
    return "".join(lines)
