"""`scangate` run as a user runs it: a separate process with `SCANGATE_URL` and
`SCANGATE_TOKEN` in its environment, and none of the test process's other `SCANGATE_*`
variables. Mixed into the services the CLI suites talk to (the real one, `cli_service.py`, and
the approvals stand-in, `approval_service.py`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class ScangateCli:
    """`scangate` against the service at `url`, as the principal whose API key is `keys[who]`."""

    url: str
    keys: dict[str, str]  # principal name -> API key

    def env(self, who: str | None = "ci", **extra: str) -> dict[str, str]:
        """A CLI environment: the service URL and `who`'s API key (None: no token at all)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCANGATE_")}
        env["SCANGATE_URL"] = self.url
        if who is not None:
            env["SCANGATE_TOKEN"] = self.keys[who]
        env.update(extra)
        return env

    def scangate(
        self, *args: str, who: str | None = "ci", timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """`scangate ARGS` as `who`, in its own process, to the end."""
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env(who, **env),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, who: str = "ci", **popen: Any) -> subprocess.Popen[str]:
        """`scangate ARGS` started, stdout and stderr piped unless given."""
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env(who),
            cwd=REPO,
            text=True,
            **popen,
        )
