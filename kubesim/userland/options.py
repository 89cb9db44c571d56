"""GNU-style option parsing for the simulated programs.

As GNU getopt: short options combine (`-qE`), a short option's value may be attached (`-n5`)
or follow (`-n 5`), long options take `--name=value` or `--name value`, options may follow
operands (`ls /etc -l`), and `--` ends options. A bad option prints coreutils' two-line
complaint, and the program exits with its own usage status.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from kubesim.userland.container import Process


@dataclass
class Parsed:
    flags: set[str] = field(default_factory=set)
    values: dict[str, list[str]] = field(default_factory=dict)
    operands: list[str] = field(default_factory=list)

    def last(self, option: str, default: str | None = None) -> str | None:
        found = self.values.get(option)
        return found[-1] if found else default


class UsageError(Exception):
    pass


def _parse(
    args: list[str], short: str, with_value: Collection[str], long: Mapping[str, str]
) -> Parsed:
    parsed = Parsed()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            parsed.operands.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            matches = [k for k in long if k == name] or [k for k in long if k.startswith(name)]
            if len(matches) != 1:
                why = "unrecognized" if not matches else "ambiguous"
                raise UsageError(f"{why} option '--{name}'")
            option = long[matches[0]]
            if option in with_value:
                if not eq:
                    if i >= len(args):
                        raise UsageError(f"option '--{matches[0]}' requires an argument")
                    value, i = args[i], i + 1
                parsed.values.setdefault(option, []).append(value)
            else:
                parsed.flags.add(option)
            continue
        if not arg.startswith("-") or arg == "-":
            parsed.operands.append(arg)
            continue
        j = 1
        while j < len(arg):
            letter = arg[j]
            if letter in with_value:
                value = arg[j + 1 :]
                if not value:
                    if i >= len(args):
                        raise UsageError(f"option requires an argument -- '{letter}'")
                    value, i = args[i], i + 1
                parsed.values.setdefault(letter, []).append(value)
                break
            if letter not in short:
                raise UsageError(f"invalid option -- '{letter}'")
            parsed.flags.add(letter)
            j += 1
    return parsed


async def parse_options(
    proc: Process,
    short: str,
    with_value: Collection[str] = "",
    long: Mapping[str, str] | None = None,
) -> Parsed | None:
    """The program's options, or None after printing the usage complaint. `with_value` holds
    the options that take a value: short letters, or the keys of long-only options."""
    try:
        return _parse(proc.args, short, with_value, long or {})
    except UsageError as exc:
        await proc.error(str(exc))
        await proc.stderr.write(f"Try '{proc.basename()} --help' for more information.\n".encode())
        return None
