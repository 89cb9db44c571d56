"""The demo's simulated cluster: kubesim as a child process that cannot outlive the demo.

The demo stops kubesim itself when it ends normally (Ctrl-C, SIGTERM). When the demo's process
dies without running any cleanup (SIGKILL, a crash of the interpreter), the kernel ends kubesim
instead: on Linux the child asks for a parent-death signal (prctl PR_SET_PDEATHSIG) before it
executes, so no orphan keeps holding its port.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.demo.seed import DEMO_SEED

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_START_TIMEOUT_SECONDS = 30
_STOP_TIMEOUT_SECONDS = 10


@dataclass
class SimulatedCluster:
    process: subprocess.Popen[str]
    url: str
    admin_kubeconfig: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec function that makes the child receive SIGTERM when the demo process dies."""
    if not sys.platform.startswith("linux"):
        return None

    def arrange() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died between fork and prctl; then no signal will ever come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return arrange


def start_simulated_cluster(directory: Path, extra_seed: str = "") -> SimulatedCluster:
    """Start kubesim over TLS with the demo's seed (and `extra_seed` documents, such as the
    guard's webhook registration); return once it listens."""
    seed = directory / "seed.yaml"
    seed.write_text(DEMO_SEED + extra_seed)
    kubeconfig = directory / "admin.kubeconfig"
    command = [
        sys.executable,
        "-m",
        "kubesim",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        # One argv element: a token that starts with "-" would be read as an option.
        f"--admin-token={secrets.token_urlsafe(24)}",
        "--seed",
        str(seed),
        "--tls",
        "--write-kubeconfig",
        str(kubeconfig),
    ]
    # Started from the main thread before any other thread exists: the parent-death signal is
    # tied to the thread that forked, and preexec_fn is only safe without other threads.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent(os.getpid())
    )
    assert process.stdout is not None
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("kubesim listening on "):
            url = line.removeprefix("kubesim listening on ").strip()
            return SimulatedCluster(process, url, kubeconfig)
    process.kill()
    process.wait()
    raise RuntimeError("kubesim did not start; run `python -m kubesim --help` to investigate")
