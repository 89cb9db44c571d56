"""`scangate serve --demo`: one command gives a working scangate in front of a simulated cluster.

The demo runs as a user runs it (a subprocess in an empty directory); the tests follow the
printed banner literally (bash, the `scangate` client, the real kubectl), and check that the
simulated cluster ends with the demo however the demo ends, and that a second demo never
disturbs a running one.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import httpx

from tests.demo.demo_process import (
    StartDemo,
    assert_banner_answers,
    free_port,
    port_is_closed,
    run_banner_commands,
)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


def _gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_banner_commands_work_as_printed_and_ctrl_c_stops_the_cluster(
    start_demo: StartDemo, tmp_path: Path
) -> None:
    demo = start_demo(tmp_path, free_port())
    banner = demo.wait_for_banner()
    key_file = tmp_path / ".scangate-demo" / "api-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "export SCANGATE_URL=" in banner
    assert "export SCANGATE_TOKEN=" in banner

    scratch = tmp_path / "steps"
    scratch.mkdir()
    steps = run_banner_commands(banner, tmp_path, scratch)

    assert_banner_answers(steps)
    by_command = {step.command: step for step in steps}
    assert "apikey:demo" in by_command["scangate whoami"].stdout
    revoke = next(step for step in steps if step.command.startswith("scangate grant revoke"))
    assert "revoked" in revoke.stdout
    exec_step = next(step for step in steps if " exec web-0 " in step.command)
    assert "Debian" in exec_step.stdout
    listed = next(
        step for step in steps if step.command.startswith("curl") and "/events" not in step.command
    )
    assert '"status":"revoked"' in listed.stdout.replace(" ", "")
    # The grant guard judged both debug containers and put each decision on the grant.
    assert sum(1 for step in steps if step.comment and step.comment.startswith("refused: ")) == 1
    events = next(step for step in steps if step.command.startswith("scangate grant events"))
    decisions = [
        (line.split()[3], re.findall(r"image=(\S+)", line))
        for line in events.stdout.splitlines()
        if " debug_container " in line
    ]
    assert decisions == [("allowed", ["busybox:1.36"]), ("denied", ["alpine:3.20"])], events
    assert "is not allowed by policy 'demo' (debug_images: busybox:1.36)" in events.stdout
    cluster_url = demo.banner_value("simulated cluster")
    assert demo.interrupt(signal.SIGINT) == 0
    assert port_is_closed(cluster_url)


def test_banner_appears_only_once_the_server_answers(start_demo: StartDemo, tmp_path: Path) -> None:
    demo = start_demo(tmp_path, free_port())
    demo.wait_for_banner()
    # No retry: the moment the banner is out, its URL must answer.
    url = demo.banner_value("API")
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def test_sigterm_ends_the_demo_and_its_simulated_cluster(
    start_demo: StartDemo, tmp_path: Path
) -> None:
    demo = start_demo(tmp_path, free_port())
    demo.wait_for_banner()
    (kubesim,) = _children(demo.process.pid)

    demo.process.send_signal(signal.SIGTERM)

    assert demo.wait() == 0
    assert _gone(kubesim)
    assert port_is_closed(demo.banner_value("simulated cluster"))


def test_a_killed_demo_takes_its_simulated_cluster_with_it(
    start_demo: StartDemo, tmp_path: Path
) -> None:
    demo = start_demo(tmp_path, free_port())
    demo.wait_for_banner()
    (kubesim,) = _children(demo.process.pid)

    # SIGKILL runs no cleanup in the demo: the kernel's parent-death signal must end kubesim.
    demo.process.send_signal(signal.SIGKILL)

    assert demo.wait() == -signal.SIGKILL
    assert _gone(kubesim)
    assert port_is_closed(demo.banner_value("simulated cluster"))


def _state(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Each file's inode (replaced or not) and content; the database only by inode, since the
    running demo itself writes to it."""
    return {
        path.name: (path.stat().st_ino, b"" if path.suffix == ".db" else path.read_bytes())
        for path in sorted(directory.iterdir())
        if path.is_file() and not path.name.startswith("scangate.db-")
    }


def test_a_second_demo_leaves_the_running_one_intact(start_demo: StartDemo, tmp_path: Path) -> None:
    port = free_port()
    first = start_demo(tmp_path, port)
    first.wait_for_banner()
    directory = tmp_path / ".scangate-demo"
    before = _state(directory)
    assert "scangate.db" in before
    assert "api-key" in before

    same_port = start_demo(tmp_path, port)
    other_port = start_demo(tmp_path, free_port())

    assert same_port.wait() == 1
    assert other_port.wait() == 1
    for refused in (same_port, other_port):
        assert "a demo is already running" in refused.text, refused.text
        assert f"127.0.0.1:{port}" in refused.text
        assert "Try it" not in refused.text
    assert _state(directory) == before
    key = (directory / "api-key").read_text().strip()
    url = first.banner_value("API")
    whoami = httpx.get(f"{url}/v1/whoami", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert whoami.status_code == 200, whoami.text


def test_a_taken_port_is_refused_before_any_state_is_written(
    start_demo: StartDemo, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        demo = start_demo(tmp_path, port)
        code = demo.wait()

    assert code == 1
    assert f"127.0.0.1:{port} is already in use" in demo.text
    assert "PORT=" in demo.text  # says how to choose another port
    assert not (tmp_path / ".scangate-demo").exists()
