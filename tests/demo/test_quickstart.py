"""The README's Quickstart, followed literally from a fresh clone.

The test clones this repository into a temporary directory (plus any uncommitted changes of the
working tree, so a change is tested before it is committed), runs the Quickstart's
`make demo PORT=...` line there with a free port, runs the commands the demo prints exactly as
printed, and stops the demo with Ctrl-C. Installing a virtualenv would take longer than the
rest together, so the clone borrows this checkout's `.venv` through a symlink; `make -o` tells
make that the install stamp is current (the clone's files are all newer than it).
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from tests.demo.demo_process import (
    DemoProcess,
    assert_banner_answers,
    free_port,
    port_is_closed,
    run_banner_commands,
    shell_environment,
)

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def _fresh_clone(destination: Path) -> Path:
    _git("clone", "--quiet", str(REPO), str(destination))
    changed = _git("ls-files", "--modified", "--others", "--exclude-standard", "-z")
    for name in filter(None, changed.split("\0")):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    for name in filter(None, _git("ls-files", "--deleted", "-z").split("\0")):
        (destination / name).unlink(missing_ok=True)
    return destination


def _quickstart_commands(readme: str) -> list[str]:
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command:
                commands.append(command)
    return commands


def test_readme_quickstart_works_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = _fresh_clone(tmp_path / "scangate")
    commands = _quickstart_commands((clone / "README.md").read_text())
    demo_lines = [c for c in commands if re.fullmatch(r"make demo PORT=\d+", c)]
    assert demo_lines, f"the Quickstart shows no `make demo PORT=N` line: {commands}"
    assert ". .venv/bin/activate" in commands
    port = free_port()
    argv = shlex.split(re.sub(r"PORT=\d+", f"PORT={port}", demo_lines[0]))
    (clone / ".venv").symlink_to(REPO / ".venv")
    argv[1:1] = ["-o", ".venv/.installed"]

    demo = DemoProcess.start(argv, clone, shell_environment())
    try:
        banner = demo.wait_for_banner()
        assert f"http://127.0.0.1:{port}" in banner
        scratch = tmp_path / "steps"
        scratch.mkdir()
        steps = run_banner_commands(banner, clone, scratch)
        assert_banner_answers(steps)
        assert any(s.command.startswith("scangate grant revoke") for s in steps)
        cluster_url = demo.banner_value("simulated cluster")

        demo.interrupt(signal.SIGINT)  # Ctrl-C in the terminal running make
    finally:
        demo.stop()

    assert "Traceback" not in demo.text, demo.text
    assert port_is_closed(f"http://127.0.0.1:{port}")
    assert port_is_closed(cluster_url)
    assert (clone / ".scangate-demo" / "api-key").exists()
