"""Small programs: echo, id, uname, hostname, true, false.

With the options the demo and the tests use (`id [-un]`, `uname [-snm]`); any other option is
refused as GNU coreutils refuses an unknown one (`invalid option`, exit 1). The kernel is the
node's (every container reports the same `uname`); identity and hostname come from the
container (see `container`).
"""

from __future__ import annotations

import re
from typing import Final

from kubesim.userland.container import Process
from kubesim.userland.options import parse_options

MACHINE: Final = "x86_64"


async def true(proc: Process) -> int:
    return 0


async def false(proc: Process) -> int:
    return 1


def _escapes(text: str) -> tuple[str, bool]:
    """Backslash escapes as dash's echo reads them; True when `\\c` stops the output."""
    out: list[str] = []
    i = 0
    simple = {"n": "\n", "t": "\t", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r",
              "v": "\v", "e": "\x1b"}  # fmt: skip
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "c":
                return "".join(out), True
            if n in simple:
                out.append(simple[n])
                i += 2
                continue
            if n == "0":
                digits = re.match(r"[0-7]{0,3}", text[i + 2 :])
                octal = digits.group(0) if digits else ""
                out.append(chr(int(octal or "0", 8)))
                i += 2 + len(octal)
                continue
        out.append(c)
        i += 1
    return "".join(out), False


async def echo(proc: Process, *, dash_builtin: bool = False) -> int:
    """coreutils echo (`-n`, `-e`, `-E`); dash's builtin always reads escapes and knows only -n."""
    args = list(proc.args)
    newline, escapes = True, dash_builtin
    while args and re.fullmatch(r"-[neE]+", args[0]) and not (dash_builtin and args[0] != "-n"):
        for letter in args.pop(0)[1:]:
            newline = newline and letter != "n"
            escapes = (escapes or letter == "e") and letter != "E"
    text = " ".join(args)
    if escapes:
        text, stopped = _escapes(text)
        newline = newline and not stopped
    await proc.out(text + ("\n" if newline else ""))
    return 0


async def id_(proc: Process) -> int:
    options = await parse_options(proc, "un")
    if options is None:
        return 1
    if options.operands:
        await proc.error(f"'{options.operands[0]}': no such user")
        return 1
    c = proc.container
    if "n" in options.flags and "u" not in options.flags:
        await proc.error("cannot print only names or real IDs in default format")
        return 1
    if "u" in options.flags:
        name = c.user_name()
        if "n" not in options.flags:
            await proc.out(f"{c.uid}\n")
        elif name is None:
            await proc.error(f"cannot find name for user ID {c.uid}")
            return 1
        else:
            await proc.out(f"{name}\n")
        return 0

    def shown(number: int, name: str | None) -> str:
        return f"{number}({name})" if name is not None else str(number)

    groups = ",".join(shown(g, c.group_name(g)) for g in c.groups)
    await proc.out(
        f"uid={shown(c.uid, c.user_name())} gid={shown(c.gid, c.group_name(c.gid))} "
        f"groups={groups}\n"
    )
    return 0


async def uname(proc: Process) -> int:
    options = await parse_options(proc, "snm")
    if options is None:
        return 1
    values = {"s": "Linux", "n": proc.container.hostname, "m": MACHINE}
    flags = options.flags or {"s"}
    await proc.out(" ".join(values[f] for f in "snm" if f in flags) + "\n")
    return 0


async def hostname(proc: Process) -> int:
    await proc.out(proc.container.hostname + "\n")
    return 0
