"""The shell's builtins the demo and the tests use: exit, true, false, echo, test. They run
inside the shell process, so they work in an image whose /bin lacks the program of the same
name, as dash's do; `echo` is dash's (escapes always interpreted). Other dash builtins (cd,
export, set, command, exec...) are not simulated: `sh: 1: cd: not found`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from kubesim.userland import coreutils
from kubesim.userland.container import Program
from kubesim.userland.coreutils_files import test
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


async def _echo(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
    return await coreutils.echo(shell.process(name, args, io), dash_builtin=shell.flavour == "sh")


def _via_program(program: Program) -> Builtin:
    async def builtin(shell: Shell, name: str, args: list[str], io: ShellIO) -> int:
        return await program(shell.process(name, args, io))

    return builtin


BUILTINS: Final[dict[str, Builtin]] = {
    "echo": _echo,
    "exit": _exit,
    "false": _via_program(coreutils.false),
    "test": _via_program(test),
    "true": _via_program(coreutils.true),
}
