"""Running commands in a simulated container: the runtime's exec, and the shell.

`run_command` is what the container runtime does with an exec's argv: look argv[0] up in PATH
(or take it as a path), and start it, or fail before anything runs (`CommandNotFound`, which the
kubelet reports as an error, not an exit code). The programs are the simulated binaries in
/bin.

The shell (`shell`, `shell_runtime`) is a dash-like subset; messages such as
`sh: 1: nope: not found` (exit 127) are dash's. Files from the pod that are not simulated
programs, `#!/bin/sh` scripts included, do not run (`exec format error`): the demo and the tests
run none.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any, Final

from kubesim.userland import coreutils
from kubesim.userland.container import DEFAULT_PATH, Container, Process, Program, build_container
from kubesim.userland.coreutils_files import cat, ls, stat, test
from kubesim.userland.filesystem import resolve
from kubesim.userland.grep import grep
from kubesim.userland.shell import ShellSyntaxError, parse
from kubesim.userland.shell_runtime import Shell
from kubesim.userland.streams import Input, Output


class CommandNotFound(Exception):
    """The runtime could not start argv[0]; the message is runc's."""


async def sh(proc: Process) -> int:
    """`sh -c SCRIPT [NAME [ARG]...]`. Options, script files and a script on standard input
    are refused: nothing the demo or the tests run needs them."""
    args = proc.args
    if not args or args[0] != "-c":
        if not args:
            what = "reading a script from standard input"
        elif args[0].startswith("-"):
            what = f"option {args[0]} (only -c)"
        else:
            what = f"running the script file {args[0]}"
        await proc.stderr.write(f"sh: 0: {what} is not supported by kubesim's shell\n".encode())
        return 2
    if len(args) < 2:
        await proc.stderr.write(b"sh: 0: -c requires an argument\n")
        return 2
    shell = Shell(proc.container, cwd=proc.cwd, find=find_program)
    try:
        script = parse(args[1])
    except ShellSyntaxError as exc:
        await proc.stderr.write(f"sh: {exc.line}: {exc}\n".encode())
        return 2
    return await shell.run_script(script, proc.stdin, proc.stdout, proc.stderr)


PROGRAMS: Final[Mapping[str, Program]] = {
    "cat": cat,
    "echo": coreutils.echo,
    "false": coreutils.false,
    "grep": grep,
    "hostname": coreutils.hostname,
    "id": coreutils.id_,
    "ls": ls,
    "sh": sh,
    "stat": stat,
    "test": test,
    "true": coreutils.true,
    "uname": coreutils.uname,
}


def container_for_pod(pod: Mapping[str, Any], container_name: str) -> Container:
    """The simulated container `container_name` of `pod`, its /bin holding the programs."""
    return build_container(pod, container_name, sorted(PROGRAMS))


def find_program(container: Container, name: str, cwd: str) -> tuple[str, Program] | str:
    """(path, program) for `name`, or why it cannot run: "not found" / "Permission denied"."""
    if "/" in name:
        candidates = [resolve(name, cwd)]
    else:
        candidates = [posixpath.join(d, name) for d in DEFAULT_PATH.split(":")]
    for path in candidates:
        node = container.fs.lookup(path)
        if node is None or node.is_dir:
            continue
        if not container.may(node, 1):
            return "Permission denied"
        program = PROGRAMS.get(posixpath.basename(path))
        if program is None:
            return "Exec format error"
        return path, program
    return "not found"


async def run_command(
    container: Container, argv: list[str], stdin: Input, stdout: Output, stderr: Output
) -> int:
    """Start `argv` in `container` as the runtime would; its exit status."""
    found = find_program(container, argv[0], container.working_dir)
    if isinstance(found, str):
        if found == "not found" and "/" not in argv[0]:
            reason = f'exec: "{argv[0]}": executable file not found in $PATH'
        elif found == "not found":
            reason = f'exec: "{argv[0]}": stat {argv[0]}: no such file or directory'
        else:
            reason = f'exec: "{argv[0]}": {found.lower()}'
        raise CommandNotFound(
            f"OCI runtime exec failed: exec failed: unable to start container process: {reason}"
        )
    _, program = found
    proc = Process(container, argv[0], argv[1:], stdin, stdout, stderr, container.working_dir)
    return await program(proc)
