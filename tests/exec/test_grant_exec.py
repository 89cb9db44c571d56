"""A scanner really runs through the credentials scangate issues, and stops when the grant ends.

scangate (the real app) provisions the grant in kubesim; the issued kubeconfig is then used as
a scanner would use it: the real `kubectl exec` (WebSocket, v5.channel.k8s.io) and the
`kubernetes` client's stream(). Nothing here talks to kubesim as admin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from kubernetes import client, config
from kubernetes.stream import stream

from kubesim.userland.filesystem import DEFAULT_OS_RELEASE
from tests.support.kubectl import kubectl_in_thread
from tests.support.scangate import Scangate

pytestmark = pytest.mark.anyio


async def test_kubectl_exec_runs_in_the_granted_pod_until_the_grant_is_revoked(
    scangate: Scangate, tmp_path: Path
) -> None:
    grant = await scangate.grant(pods=["web-0"], scanner="exec")
    kubeconfig = await scangate.save_kubeconfig(grant["id"], tmp_path / "grant.kubeconfig")

    os_release = await kubectl_in_thread(
        kubeconfig, "exec", "web-0", "-c", "app", "--", "cat", "/etc/os-release"
    )
    exit_code = await kubectl_in_thread(
        kubeconfig, "exec", "web-0", "-c", "app", "--", "sh", "-c", "exit 3"
    )
    other_pod = await kubectl_in_thread(kubeconfig, "exec", "web-1", "-c", "app", "--", "true")

    assert (os_release.returncode, os_release.stdout) == (0, DEFAULT_OS_RELEASE), os_release.stderr
    assert exit_code.returncode == 3
    assert other_pod.returncode == 1
    assert other_pod.stderr.startswith('Error from server (Forbidden): pods "web-1" is forbidden')

    revoked = await scangate.revoke(grant["id"])
    assert revoked.json()["status"] == "revoked"
    after = await kubectl_in_thread(kubeconfig, "exec", "web-0", "-c", "app", "--", "true")

    assert after.returncode == 1
    # Denied, as a real cluster answers: Forbidden while the apiserver's token cache still
    # vouches for the token (its RoleBinding is gone), Unauthorized once it does not.
    assert "(Forbidden)" in after.stderr or "(Unauthorized)" in after.stderr


async def test_exec_stops_when_the_grant_expires(scangate: Scangate, tmp_path: Path) -> None:
    grant = await scangate.grant(pods=["web-0"], scanner="exec")
    kubeconfig = await scangate.save_kubeconfig(grant["id"], tmp_path / "grant.kubeconfig")
    assert (
        await kubectl_in_thread(kubeconfig, "exec", "web-0", "-c", "app", "--", "true")
    ).returncode == 0

    await scangate.expire_soon(grant["id"])
    assert await scangate.wait_for_status(grant["id"], {"expired"}) == "expired"
    after = await kubectl_in_thread(kubeconfig, "exec", "web-0", "-c", "app", "--", "true")

    assert after.returncode == 1
    assert "(Forbidden)" in after.stderr or "(Unauthorized)" in after.stderr


def _exec_stream(kubeconfig: Path, pod: str, command: list[str]) -> Any:
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    with api:
        return stream(
            client.CoreV1Api(api).connect_get_namespaced_pod_exec, pod, "payments",
            command=command, container="app", stderr=True, stdin=False, stdout=True, tty=False,
        )  # fmt: skip


async def test_the_python_client_streams_through_the_issued_kubeconfig(
    scangate: Scangate, tmp_path: Path
) -> None:
    grant = await scangate.grant(pods=["web-0"], scanner="exec")
    kubeconfig = await scangate.save_kubeconfig(grant["id"], tmp_path / "grant.kubeconfig")

    output = await anyio.to_thread.run_sync(_exec_stream, kubeconfig, "web-0", ["uname", "-n"])
    assert output == "web-0\n"

    await scangate.revoke(grant["id"])
    with pytest.raises(client.ApiException) as refused:
        await anyio.to_thread.run_sync(_exec_stream, kubeconfig, "web-0", ["uname", "-n"])
    denied = ("Handshake status 401 Unauthorized", "Handshake status 403 Forbidden")
    assert any(status in str(refused.value) for status in denied), refused.value


def _attach(kubeconfig: Path) -> str:
    """ "open" if an attach stream to web-0's app container opens (it is closed again), else
    the client's error."""
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    with api:
        try:
            session = stream(
                client.CoreV1Api(api).connect_get_namespaced_pod_attach, "web-0", "payments",
                container="app", stderr=True, stdin=False, stdout=True, tty=False,
                _preload_content=False,
            )  # fmt: skip
        except client.ApiException as exc:
            return str(exc)
        state = "open" if session.is_open() else "closed"
        session.close()
        return state


async def test_attach_follows_the_scanner_profile(scangate: Scangate, tmp_path: Path) -> None:
    # Only the debug profile grants pods/attach (kubectl debug attaches to its container).
    debug = await scangate.grant(pods=["web-0"], scanner="debug")
    exec_ = await scangate.grant(pods=["web-0"], scanner="exec")
    debug_kubeconfig = await scangate.save_kubeconfig(debug["id"], tmp_path / "debug.kubeconfig")
    exec_kubeconfig = await scangate.save_kubeconfig(exec_["id"], tmp_path / "exec.kubeconfig")

    assert await anyio.to_thread.run_sync(_attach, debug_kubeconfig) == "open"
    refused = await anyio.to_thread.run_sync(_attach, exec_kubeconfig)
    assert "Handshake status 403 Forbidden" in refused
    assert 'cannot get resource \\"pods/attach\\"' in refused
