"""The real kubectl, run as a user runs it against the simulated cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio


def kubectl(
    kubeconfig: Path | str,
    *args: str,
    request_timeout: str | None = "10s",
    cache_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`kubectl --kubeconfig KUBECONFIG ARGS...`, its output captured, never raising.
    `cache_dir` gives it a discovery cache of its own instead of the user's ~/.kube/cache."""
    command = ["kubectl", "--kubeconfig", str(kubeconfig)]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    if request_timeout is not None:
        command.append(f"--request-timeout={request_timeout}")
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, check=False
    )


async def kubectl_in_thread(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl` in a worker thread, so the app's event loop (its reaper) keeps running."""

    def run() -> subprocess.CompletedProcess[str]:
        return kubectl(kubeconfig, *args, request_timeout="20s")

    return await anyio.to_thread.run_sync(run)
