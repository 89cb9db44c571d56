"""GNU grep, with the options the demo profile and the tests use: `grep [-qEvcn] PATTERN [FILE]...`.

Patterns are POSIX basic regular expressions by default (where `(`, `|`, `+`, `?`, `{` are
literal and their backslashed forms are operators, GNU style), extended with `-E`; both are
translated to Python's `re`, including bracket classes such as `[[:space:]]`.
Exit status: 0 if a line was selected, 1 if none, 2 on an error (unless `-q` found a match).
"""

from __future__ import annotations

import re
from typing import Final

from kubesim.userland.container import FileError, Process
from kubesim.userland.options import parse_options

_CLASSES: Final = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r" \t\n\r\f\v",
    "blank": r" \t",
    "punct": r"!-/:-@\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "print": r" -~",
    "graph": r"!-~",
    "cntrl": r"\x00-\x1f\x7f",
}


class _PatternError(Exception):
    pass


def _bracket(pattern: str, start: int) -> tuple[str, int]:
    """Translate the bracket expression starting at `pattern[start]` ("[")."""
    i = start + 1
    out = ["["]
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        out.append(r"\]")
        i += 1
    while i < len(pattern):
        c = pattern[i]
        if c == "]":
            out.append("]")
            return "".join(out), i + 1
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end > 0 else ""
            if name not in _CLASSES:
                raise _PatternError("Unmatched [, [^, [:, [., or [=")
            out.append(_CLASSES[name])
            i = end + 2
            continue
        # A backslash is literal inside POSIX brackets, as are Python's other specials.
        out.append("\\" + c if c in "\\[" else c)
        i += 1
    raise _PatternError("Unmatched [, [^, [:, [., or [=")


def translate(pattern: str, extended: bool) -> str:
    """A POSIX BRE/ERE (GNU flavour) as a Python regular expression."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            if n in "(){}|+?" and not extended:
                out.append(n)  # \( \) \{ \} \| \+ \? are BRE operators
            elif n in "<>":
                out.append(r"\b")
            elif n.isdigit() or n in "wWsSbB":
                out.append("\\" + n)
            else:
                out.append(re.escape(n))
            i += 2
            continue
        if c == "[":
            translated, i = _bracket(pattern, i)
            out.append(translated)
            continue
        if not extended and c in "(){}|+?":
            out.append("\\" + c)
        elif c == "*" and (not out or out[-1] in ("^", "(", "|")):
            out.append(r"\*")  # a leading star is literal
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _compile(patterns: list[str], flags: set[str]) -> re.Pattern[str]:
    parts = [f"(?:{translate(pattern, 'E' in flags)})" for pattern in patterns]
    try:
        return re.compile("|".join(parts))
    except re.error as exc:
        raise _PatternError(_gnu_message(str(exc))) from None


def _gnu_message(python_message: str) -> str:
    if "parenthesis" in python_message or "subpattern" in python_message:
        return "Unmatched ( or \\("
    if "bracket" in python_message or "character set" in python_message:
        return "Unmatched [, [^, [:, [., or [="
    return f"Invalid regular expression ({python_message})"


async def grep(proc: Process) -> int:
    options = await parse_options(proc, "qEvcn")
    if options is None:
        return 2
    flags, operands = options.flags, list(options.operands)
    if not operands:
        await proc.stderr.write(b"Usage: grep [OPTION]... PATTERNS [FILE]...\n")
        await proc.stderr.write(b"Try 'grep --help' for more information.\n")
        return 2
    # One operand may hold several patterns, one per line.
    patterns = operands.pop(0).split("\n")
    try:
        regex = _compile(patterns, flags)
    except _PatternError as exc:
        await proc.error(str(exc))
        return 2
    files = operands or ["-"]
    show_names = len(files) > 1
    selected_any, failed = False, False
    for name in files:
        label = "(standard input)" if name == "-" else name
        try:
            data = await proc.stdin.read_all() if name == "-" else proc.read_file(name)
        except FileError as exc:
            await proc.error(f"{name}: {exc}")
            failed = True
            continue
        count = await _grep_one(proc, regex, data, flags, label if show_names else "")
        selected_any = selected_any or count > 0
        if selected_any and "q" in flags:
            return 0
        if "c" in flags:
            await proc.out((f"{label}:" if show_names else "") + f"{count}\n")
    if failed and not (selected_any and "q" in flags):
        return 2
    return 0 if selected_any else 1


async def _grep_one(
    proc: Process, regex: re.Pattern[str], data: bytes, flags: set[str], prefix: str
) -> int:
    """Print the selected lines of one file (unless -q/-c); the number selected."""
    text = data.decode(errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    quiet = bool(flags & {"q", "c"})
    count = 0
    for number, line in enumerate(lines, start=1):
        found = regex.search(line) is not None
        if found == ("v" in flags):
            continue
        count += 1
        if not quiet:
            head = (f"{prefix}:" if prefix else "") + (f"{number}:" if "n" in flags else "")
            await proc.out(f"{head}{line}\n")
    return count
