"""Running commands in a simulated container: the runtime's exec, and the shell.

`run_command` is what the container runtime does with an exec's argv: look argv[0] up in PATH
(or take it as a path), and start it, or fail before anything runs (`CommandNotFound`, which the
kubelet reports as an error, not an exit code). A program is either one of the simulated
binaries in /bin or a `#!/bin/sh` script from the pod's files, which the shell runs.

The shell is dash-like (Debian's /bin/sh): builtins `exit`, `true`, `false`, `echo`, `test`
(`sh -e` for errexit); messages such as
`sh: 1: nope: not found` (exit 127) and `sh: 1: cannot create /x: Read-only file system`.
`bash` is the same shell with bash's message format.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any, Final

from kubesim.userland import coreutils
from kubesim.userland.container import Container, FileError, Process, Program, build_container
from kubesim.userland.coreutils_files import cat, ls, stat, test
from kubesim.userland.filesystem import resolve
from kubesim.userland.grep import grep
from kubesim.userland.shell import ShellSyntaxError, parse
from kubesim.userland.shell_builtins import ExitShell
from kubesim.userland.shell_runtime import Shell
from kubesim.userland.streams import Input, Output


class CommandNotFound(Exception):
    """The runtime could not start argv[0]; the message is runc's."""


async def sh(proc: Process) -> int:
    """`sh -c SCRIPT [NAME [ARG]...]`, `sh FILE [ARG]...`, or `sh` reading the script from
    standard input (as `kubectl exec -i POD -- sh < script.sh` does)."""
    args = list(proc.args)
    errexit = False
    while args and args[0] in ("-e", "+e", "-x", "+x", "-u", "+u", "-eu", "-ex"):
        errexit = "e" in args.pop(0).lstrip("-") or errexit
    shell_name = proc.basename()
    if args and args[0] == "-c":
        if len(args) < 2:
            await proc.stderr.write(f"{shell_name}: 0: -c requires an argument\n".encode())
            return 2
        source, name, positional = args[1], (args[2] if len(args) > 2 else shell_name), args[3:]
    elif args:
        try:
            source = proc.read_file(args[0]).decode(errors="replace")
        except FileError as exc:
            await proc.stderr.write(f"{shell_name}: 0: cannot open {args[0]}: {exc}\n".encode())
            return 2
        name, positional = args[0], args[1:]
    else:
        source = (await proc.stdin.read_all()).decode(errors="replace")
        name, positional = shell_name, []
    shell = Shell(
        proc.container,
        name=name,
        flavour=shell_name,
        variables=dict(proc.env),
        cwd=proc.cwd,
        positional=positional,
        find=find_program,
    )
    shell.errexit = errexit
    try:
        script = parse(source)
    except ShellSyntaxError as exc:
        await proc.stderr.write(f"{shell.prefix(exc.line)}{exc}\n".encode())
        return 2
    try:
        return await shell.run_script(script, proc.stdin, proc.stdout, proc.stderr)
    except ExitShell as done:
        return done.code


PROGRAMS: Final[Mapping[str, Program]] = {
    "bash": sh,
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


def find_program(
    container: Container, name: str, path_variable: str, cwd: str
) -> tuple[str, Program] | str:
    """(path, program) for `name`, or why it cannot run: "not found" / "Permission denied"."""
    if "/" in name:
        candidates = [resolve(name, cwd)]
    else:
        candidates = [posixpath.join(d, name) for d in path_variable.split(":") if d]
    for path in candidates:
        node = container.fs.lookup(path)
        if node is None or node.is_dir:
            continue
        if not container.may(node, 1):
            return "Permission denied"
        program = PROGRAMS.get(posixpath.basename(path))
        if node.content.startswith(b"#!"):
            interpreter = node.content[2:].split(b"\n", 1)[0].strip().split(b" ")[0].decode()
            program = PROGRAMS.get(posixpath.basename(interpreter))
            if program is sh:
                return path, _script_runner(path, posixpath.basename(interpreter))
        if program is None:
            return "Exec format error"
        return path, program
    return "not found"


def _script_runner(path: str, shell_name: str) -> Program:
    async def run_script(proc: Process) -> int:
        proc.args = [path, *proc.args]
        proc.name = shell_name
        return await sh(proc)

    return run_script


async def run_command(
    container: Container, argv: list[str], stdin: Input, stdout: Output, stderr: Output
) -> int:
    """Start `argv` in `container` as the runtime would; its exit status."""
    found = find_program(container, argv[0], container.env.get("PATH", ""), container.working_dir)
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
    proc = Process(
        container, argv[0], argv[1:], stdin, stdout, stderr, container.working_dir,
        dict(container.env),
    )  # fmt: skip
    return await program(proc)
