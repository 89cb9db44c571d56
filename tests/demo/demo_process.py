"""Running the demo as a user does, and following its banner literally.

`DemoProcess` wraps a `scangate serve --demo` (or `make demo`) child process and reads its
output up to the end of the banner. `run_banner_commands` pastes the banner's "Try it" lines
into one bash session (from the demo's directory, with a PATH that does not already contain
`scangate`) and returns every line's exit status and output, for tests to compare with the
answer the banner's comment promises (`# yes`, `# no`, `# denied: ...`, `# refused: ...`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BANNER_END = "Stop with Ctrl-C"
_COMMENT = re.compile(r"^(?P<command>.*?\S)\s+# (?P<comment>.*)$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_closed(url: str) -> bool:
    host, port = url.split("://", 1)[-1].rstrip("/").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@dataclass
class DemoProcess:
    """A running demo; `output` collects everything it printed (stdout and stderr)."""

    process: subprocess.Popen[str]
    directory: Path  # where it was started; its state is in .scangate-demo/
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None
    _banner_seen: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(
        cls, argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None
    ) -> DemoProcess:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            # Its own process group, like a command started from a terminal; make's child
            # (scangate) then gets Ctrl-C's SIGINT through the group, as in a terminal.
            start_new_session=True,
        )
        demo = cls(process, cwd)
        demo._reader = threading.Thread(target=demo._read, daemon=True)
        demo._reader.start()
        return demo

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith(BANNER_END):
                self._banner_seen.set()

    @property
    def text(self) -> str:
        return "".join(self.output)

    def wait_for_banner(self, timeout: float = 60) -> str:
        if not self._banner_seen.wait(timeout):
            raise AssertionError(f"the demo printed no banner in {timeout} s:\n{self.text}")
        return self.text

    def banner_value(self, label: str) -> str:
        found = re.search(rf"^\s+{re.escape(label)}:\s+(\S+)", self.text, re.MULTILINE)
        assert found, f"no {label!r} in the banner:\n{self.text}"
        return found.group(1)

    def interrupt(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        """Send `sig` to the demo's process group (a terminal's Ctrl-C) and wait for its end."""
        os.killpg(self.process.pid, sig)
        return self.process.wait(timeout=timeout)

    def wait(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# The `start_demo` fixture: start_demo(cwd, port) -> DemoProcess.
StartDemo = Callable[..., DemoProcess]


@dataclass(frozen=True)
class BannerStep:
    command: str
    comment: str | None  # what the banner says the command answers
    returncode: int
    stdout: str
    stderr: str


def banner_commands(banner: str) -> list[tuple[str, str | None]]:
    """The command lines of the banner's "Try it" block, with their trailing comments."""
    block = banner.split("Try it", 1)[1].split(BANNER_END, 1)[0]
    commands: list[tuple[str, str | None]] = []
    for line in block.splitlines()[1:]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _COMMENT.match(stripped)
        if match:
            commands.append((match["command"], match["comment"]))
        else:
            commands.append((stripped, None))
    return commands


def shell_environment() -> dict[str, str]:
    """A user's environment: no SCANGATE_* variables, and a PATH with kubectl and curl but no
    `scangate` (the banner must say how to get it)."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl must be on PATH"
    path = [str(Path(kubectl).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    path = [p for p in dict.fromkeys(path) if not (Path(p) / "scangate").exists()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCANGATE_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(path)
    return env


def run_banner_commands(banner: str, cwd: Path, scratch: Path) -> list[BannerStep]:
    """Run the banner's commands, in order, in one bash session started in `cwd`."""
    commands = banner_commands(banner)
    lines = []
    for index, (command, _) in enumerate(commands):
        out, err, code = (scratch / f"{index}.{kind}" for kind in ("out", "err", "rc"))
        lines.append(f"{command} >{out} 2>{err}; echo $? >{code}")
    subprocess.run(
        ["bash", "-c", "\n".join(lines)],
        cwd=cwd,
        env=shell_environment(),
        timeout=120,
        check=False,
    )
    steps = []
    for index, (command, comment) in enumerate(commands):
        code = scratch / f"{index}.rc"
        assert code.exists(), f"the banner's commands stopped before `{command}`"
        steps.append(
            BannerStep(
                command,
                comment,
                int(code.read_text()),
                (scratch / f"{index}.out").read_text(),
                (scratch / f"{index}.err").read_text(),
            )
        )
    return steps


def assert_banner_answers(steps: Sequence[BannerStep]) -> None:
    """Every step answered what its comment says; steps without a yes/no/error comment work."""
    for step in steps:
        what = f"`{step.command}` -> {step.returncode}\n{step.stdout}{step.stderr}"
        comment = step.comment or ""
        if comment == "yes":
            assert (step.returncode, step.stdout.strip()) == (0, "yes"), what
        elif comment == "no" or comment.startswith("no:"):
            assert step.returncode != 0, what
            assert step.stdout.strip() == "no", what
        elif comment.startswith("denied: "):
            # A revoked token is denied: 403 while the API server's token cache still
            # authenticates it (the RoleBinding is gone), 401 once the ServiceAccount is too.
            assert step.returncode != 0, what
            assert "(Forbidden)" in step.stderr or "(Unauthorized)" in step.stderr, what
        elif comment.startswith("refused: "):
            # The grant guard's admission denial, with the reason the comment quotes.
            assert step.returncode != 0, what
            assert 'admission webhook "guard.scangate.dev" denied the request' in step.stderr, what
            assert comment.removeprefix("refused: ") in step.stderr, what
        else:
            assert step.returncode == 0, what
