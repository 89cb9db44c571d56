"""Small programs: echo, head, wc, id, uname, hostname, whoami, pwd, env, true, false.

The kernel is the node's (every container reports the same `uname`); identity and hostname
come from the container (see `container`).
"""

from __future__ import annotations

import re
from typing import Final

from kubesim.userland.container import FileError, Process
from kubesim.userland.options import parse_options

KERNEL_RELEASE: Final = "6.1.0-kubesim"
KERNEL_VERSION: Final = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0 (2024-01-01)"
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


async def _inputs(proc: Process, operands: list[str]) -> list[tuple[str, bytes | None]]:
    found: list[tuple[str, bytes | None]] = []
    for name in operands or ["-"]:
        if name == "-":
            found.append((name, await proc.stdin.read_all()))
            continue
        try:
            found.append((name, proc.read_file(name)))
        except FileError as exc:
            await proc.error(f"cannot open '{name}' for reading: {exc}")
            found.append((name, None))
    return found


async def head(proc: Process) -> int:
    # `head -5` is the historical spelling of `head -n 5`.
    proc.args = [f"-n{a[1:]}" if re.fullmatch(r"-\d+", a) else a for a in proc.args]
    options = await parse_options(proc, "", with_value="n", long={"lines": "n"})
    if options is None:
        return 1
    try:
        count = int(options.last("n", "10") or "10")
    except ValueError:
        await proc.error(f"invalid number of lines: '{options.last('n')}'")
        return 1
    status = 0
    for _name, data in await _inputs(proc, options.operands):
        if data is None:
            status = 1
            continue
        lines = data.split(b"\n")
        await proc.stdout.write(b"\n".join(lines[:count]) + (b"\n" if len(lines) > count else b""))
    return status


async def wc(proc: Process) -> int:
    options = await parse_options(proc, "lwc", long={"lines": "l", "words": "w", "bytes": "c"})
    if options is None:
        return 1
    wanted = [f for f in "lwc" if f in options.flags] or ["l", "w", "c"]
    status = 0
    for name, data in await _inputs(proc, options.operands):
        if data is None:
            status = 1
            continue
        counts = {"l": data.count(b"\n"), "w": len(data.split()), "c": len(data)}
        numbers = [str(counts[f]) for f in wanted]
        shown = numbers[0] if len(numbers) == 1 else " ".join(n.rjust(7) for n in numbers)
        await proc.out(shown + ("" if name == "-" else f" {name}") + "\n")
    return status


async def id_(proc: Process) -> int:
    options = await parse_options(
        proc, "ugGnr", long={"user": "u", "group": "g", "groups": "G", "name": "n", "real": "r"}
    )
    if options is None:
        return 1
    if options.operands:
        await proc.error(f"'{options.operands[0]}': no such user")
        return 1
    c = proc.container

    def shown(number: int, name: str | None) -> str:
        return f"{number}({name})" if name is not None else str(number)

    flags = options.flags
    if flags & {"u", "g", "G"}:
        if "u" in flags:
            ids = [(c.uid, c.user_name())]
        elif "g" in flags:
            ids = [(c.gid, c.group_name(c.gid))]
        else:
            ids = [(g, c.group_name(g)) for g in c.groups]
        if "n" in flags:
            if any(name is None for _, name in ids):
                missing = next(n for n, name in ids if name is None)
                await proc.error(f"cannot find name for {'user' if 'u' in flags else 'group'} "
                                 f"ID {missing}")  # fmt: skip
                return 1
            await proc.out(" ".join(str(name) for _, name in ids) + "\n")
        else:
            await proc.out(" ".join(str(number) for number, _ in ids) + "\n")
        return 0
    groups = ",".join(shown(g, c.group_name(g)) for g in c.groups)
    await proc.out(
        f"uid={shown(c.uid, c.user_name())} gid={shown(c.gid, c.group_name(c.gid))} "
        f"groups={groups}\n"
    )
    return 0


async def uname(proc: Process) -> int:
    options = await parse_options(
        proc,
        "asnrvmpio",
        long={
            "all": "a",
            "kernel-name": "s",
            "nodename": "n",
            "kernel-release": "r",
            "kernel-version": "v",
            "machine": "m",
            "processor": "p",
            "hardware-platform": "i",
            "operating-system": "o",
        },
    )
    if options is None:
        return 1
    values = {
        "s": "Linux",
        "n": proc.container.hostname,
        "r": KERNEL_RELEASE,
        "v": KERNEL_VERSION,
        "m": MACHINE,
        "p": "unknown",
        "i": "unknown",
        "o": "GNU/Linux",
    }
    flags = options.flags or {"s"}
    if "a" in flags:
        # -a leaves out -p and -i when they are "unknown", as GNU uname does.
        flags = set("snrvmo")
    await proc.out(" ".join(values[f] for f in "snrvmpio" if f in flags) + "\n")
    return 0


async def hostname(proc: Process) -> int:
    await proc.out(proc.container.hostname + "\n")
    return 0


async def whoami(proc: Process) -> int:
    name = proc.container.user_name()
    if name is None:
        await proc.error(f"cannot find name for user ID {proc.container.uid}")
        return 1
    await proc.out(name + "\n")
    return 0


async def pwd(proc: Process) -> int:
    await proc.out(proc.cwd + "\n")
    return 0


async def env(proc: Process) -> int:
    if proc.args:
        await proc.error("running a command through env is not supported by kubesim")
        return 125
    for key, value in proc.env.items():
        await proc.out(f"{key}={value}\n")
    return 0
