"""The shell's builtins: exit, cd, :, true, false, echo, test, export, unset, set, command,
exec. They run inside the shell process, so they work in an image whose /bin lacks the
program of the same name, as dash's do; `echo` is dash's (escapes always interpreted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from kubesim.userland import coreutils
from kubesim.userland.container import Program
from kubesim.userland.coreutils_files import test
from kubesim.userland.filesystem import resolve
from kubesim.userland.streams import Input, Output

if TYPE_CHECKING:
    from kubesim.userland.shell_runtime import Shell


class ExitShell(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ShellIO:
    stdin: Input
    stdout: Output
    stderr: Output


# --------------------------------------------------------------------------------

Builtin = Callable[["Shell", str, list[str], ShellIO], Awaitable[int]]


async def _exit(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    if args and not args[0].isdigit():
        await shell.diag(io, f"exit: Illegal number: {args[0]}")
        raise ExitShell(2)
    raise ExitShell(int(args[0]) & 0xFF if args else shell.status)


async def _cd(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    target = args[0] if args else shell.variables.get("HOME", "/")
    if target == "-":
        target = shell.variables.get("OLDPWD", shell.cwd)
    path = resolve(target, shell.cwd)
    node = shell.container.fs.lookup(path)
    if node is None or not node.is_dir or not shell.container.may(node, 1):
        await shell.diag(io, f"cd: can't cd to {target}")
        return 2
    shell.variables["OLDPWD"], shell.cwd, shell.variables["PWD"] = shell.cwd, path, path
    return 0


async def _colon(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    return 0


async def _export(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    for arg in args:
        if arg == "-p":
            continue
        key, eq, value = arg.partition("=")
        if eq:
            shell.variables[key] = value
    return 0


async def _unset(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    for arg in args:
        shell.variables.pop(arg, None)
    return 0


async def _set(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            shell.positional = rest
            return 0
        if arg in ("-o", "+o") and rest and rest[0] == "errexit":
            shell.errexit = arg == "-o"
            rest.pop(0)
        elif arg[:1] in "-+" and len(arg) > 1 and set(arg[1:]) <= set("euxvfC"):
            if "e" in arg:
                shell.errexit = arg[0] == "-"
        else:
            shown = f"{arg} {rest[0]}" if arg in ("-o", "+o") and rest else arg
            await shell.diag(io, f"set: Illegal option {shown}")
            return 2
    return 0


async def _command(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    if args[:1] != ["-v"]:
        return await shell.run_words(args, io, {}) if args else 0
    status = 0
    for wanted in args[1:]:
        if wanted in BUILTINS:
            await io.stdout.write(f"{wanted}\n".encode())
            continue
        found = shell.find(shell.container, wanted, shell.variables.get("PATH", ""), shell.cwd)
        if isinstance(found, str):
            status = 1
        else:
            await io.stdout.write(f"{found[0]}\n".encode())
    return status


async def _exec(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    if not args:
        return 0
    raise ExitShell(await shell.run_words(args, io, {}))


async def _echo(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    return await coreutils.echo(shell.process(name, args, io), dash_builtin=shell.flavour == "sh")


def _via_program(program: Program) -> Builtin:
    async def builtin(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
        return await program(shell.process(name, args, io))

    return builtin


BUILTINS: Final[dict[str, Builtin]] = {
    ":": _colon,
    "cd": _cd,
    "command": _command,
    "echo": _echo,
    "exec": _exec,
    "exit": _exit,
    "export": _export,
    "false": _via_program(coreutils.false),
    "set": _set,
    "test": _via_program(test),
    "true": _via_program(coreutils.true),
    "unset": _unset,
}
