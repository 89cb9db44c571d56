"""Starting and stopping a `python -m kubesim` process, for the pytest plugin and benchmarks.

The first start picks a free port; later starts reuse it (and the TLS directory), so a client
configured before a restart reaches the new process, as it would a restarted API server.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

_READY_PREFIX: Final = "kubesim listening on "
_START_TIMEOUT: Final = 30.0


class KubesimStartError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child when the process that started it dies, so a killed
    test run (Ctrl-C twice, a CI timeout) cannot leave kubesim servers behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class KubesimProcess:
    def __init__(
        self,
        directory: Path,
        admin_token: str,
        seed_file: Path | None = None,
        tls: bool = False,
        latency_ms: float = 0,
        token_max_seconds: int | None = None,
        host: str = "127.0.0.1",
        token_cache_ttl_seconds: float | None = None,
        kube_version: str | None = None,
        service_addresses: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.admin_token = admin_token
        self.seed_file = seed_file
        self.tls = tls
        self.latency_ms = latency_ms
        self.token_max_seconds = token_max_seconds
        self.host = host
        # None: kubesim's defaults (the apiserver's 10 s cache; the newest modelled release).
        self.token_cache_ttl_seconds = token_cache_ttl_seconds
        self.kube_version = kube_version
        self.service_addresses = dict(service_addresses or {})
        self.port = 0
        self.url = ""
        self.kubeconfig_path = directory / "admin.kubeconfig"
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def ca_cert_pem(self) -> bytes | None:
        return (self.directory / "tls" / "ca.crt").read_bytes() if self.tls else None

    def command(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "kubesim",
            "--host",
            self.host,
            "--port",
            str(self.port),
            # One argv element: a token that starts with "-" would be read as an option.
            f"--admin-token={self.admin_token}",
            "--write-kubeconfig",
            str(self.kubeconfig_path),
        ]
        if self.seed_file is not None:
            args += ["--seed", str(self.seed_file)]
        if self.tls:
            args += ["--tls", "--tls-dir", str(self.directory / "tls")]
        if self.latency_ms:
            args += ["--latency-ms", str(self.latency_ms)]
        if self.token_max_seconds is not None:
            args += ["--token-max-seconds", str(self.token_max_seconds)]
        if self.token_cache_ttl_seconds is not None:
            args += ["--token-cache-ttl-seconds", str(self.token_cache_ttl_seconds)]
        if self.kube_version is not None:
            args += ["--kube-version", self.kube_version]
        for service, address in self.service_addresses.items():
            args += ["--service-address", f"{service}={address}"]
        return args

    def start(self) -> None:
        stdout_path = self.directory / "kubesim.out"
        stderr_path = self.directory / "kubesim.err"
        with stdout_path.open("wb") as stdout, stderr_path.open("ab") as stderr:
            self._popen = subprocess.Popen(  # the admin token is on argv: test-only process
                self.command(),
                stdout=stdout,
                stderr=stderr,
                env={**os.environ},
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            for line in stdout_path.read_text().splitlines():
                if line.startswith(_READY_PREFIX):
                    self.url = line[len(_READY_PREFIX) :].strip()
                    self.port = int(self.url.rsplit(":", 1)[1])
                    return
            if self._popen.poll() is not None:
                raise KubesimStartError(
                    f"kubesim exited with {self._popen.returncode}: {stderr_path.read_text()}"
                )
            time.sleep(0.02)
        self.stop()
        raise KubesimStartError(f"kubesim did not start within {_START_TIMEOUT}s")

    def stop(self) -> None:
        popen, self._popen = self._popen, None
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
