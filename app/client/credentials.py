"""Where the client's bearer token comes from, and how it is renewed.

CI ID tokens are short-lived: GitHub's last minutes, and a scan can outlast them, so the
revocation at the end of `scangate run` would be refused (401) with the token it started with.
A credential can therefore be *refreshed* once when the service answers 401:
- `--token-command CMD` (`SCANGATE_TOKEN_COMMAND`): CMD prints a fresh token; run at first use
  and on each refresh (e.g. a curl to GitHub's ID token endpoint);
- `--token-file FILE`: re-read on refresh (something else may have renewed it);
- `SCANGATE_TOKEN`: fixed.
Tokens never appear in messages; a failing token command is reported by its exit status only.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Final, Protocol

from app.client.errors import ClientError, UsageError

TOKEN_ENV: Final = "SCANGATE_TOKEN"
TOKEN_COMMAND_ENV: Final = "SCANGATE_TOKEN_COMMAND"
TOKEN_COMMAND_TIMEOUT_SECONDS: Final = 30


class Credential(Protocol):
    def token(self) -> str:
        """The current token (obtained on first use)."""
        ...

    def refresh(self) -> bool:
        """Try to obtain a newer token; False if this kind cannot."""
        ...


class StaticToken:
    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def refresh(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"


class FileToken:
    def __init__(self, path: str) -> None:
        self._path = path
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            self._token = self._read()
        return self._token

    def refresh(self) -> bool:
        previous, self._token = self._token, self._read()
        return self._token != previous

    def _read(self) -> str:
        try:
            token = Path(self._path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read --token-file {self._path}: {exc.strerror}") from None
        if not token:
            raise UsageError(f"--token-file {self._path} is empty")
        return token


class CommandToken:
    def __init__(self, command: str) -> None:
        self._command = command
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            self._token = self._run()
        return self._token

    def refresh(self) -> bool:
        self._token = self._run()
        return True

    def _run(self) -> str:
        try:
            # A shell command on purpose: it is the user's own configuration (like git's
            # credential helpers), typically a curl piped into jq.
            result = subprocess.run(  # noqa: S602
                self._command,
                shell=True,
                capture_output=True,
                text=True,
                timeout=TOKEN_COMMAND_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ClientError(
                f"the token command did not finish in {TOKEN_COMMAND_TIMEOUT_SECONDS}s"
            ) from None
        if result.returncode != 0:
            # Its stderr is passed on (it explains the failure); stdout might hold a secret.
            raise ClientError(
                f"the token command failed with status {result.returncode}: "
                f"{result.stderr.strip()[:300]}"
            )
        token = result.stdout.strip()
        if not token:
            raise ClientError("the token command printed no token")
        return token


def credential_from(*, token_file: str | None, token_command: str | None) -> Credential:
    """Flags first, then the environment: --token-command, --token-file, $SCANGATE_TOKEN_COMMAND,
    $SCANGATE_TOKEN."""
    if token_command:
        return CommandToken(token_command)
    if token_file:
        return FileToken(token_file)
    if os.environ.get(TOKEN_COMMAND_ENV, "").strip():
        return CommandToken(os.environ[TOKEN_COMMAND_ENV])
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no credential: set {TOKEN_ENV}, or pass --token-file or --token-command")
    return StaticToken(token)
