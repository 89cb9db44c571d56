"""Tokens of the shell subset: words (with their quoting and expansions), operators,
redirections and newlines. See `shell` for what the language covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

_OPERATORS: Final = ("&&", "||", ";;", "|", ";", "&", "(", ")")
_REDIRECTS: Final = (">>", ">&", "<&", ">|", "<", ">")
_META: Final = frozenset(" \t\n&|;()<>")
_SPECIAL_PARAMETERS: Final = frozenset("?$#!@*-0123456789")


class ShellSyntaxError(Exception):
    """The script cannot be parsed; `str()` is dash's message after "sh: LINE: "."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Part:
    """A piece of a word: literal text, or a parameter to expand."""

    kind: Literal["text", "param"]
    value: str
    quoted: bool


Word = tuple[Part, ...]


def literal(word: Word) -> str | None:
    """The word's text if it is entirely unquoted literal text (reserved words, `!`)."""
    if all(p.kind == "text" and not p.quoted for p in word):
        return "".join(p.value for p in word)
    return None


@dataclass(frozen=True)
class Token:
    kind: Literal["word", "op", "redirect", "newline"]
    line: int
    word: Word = ()
    op: str = ""
    fd: int = -1


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        while self._skip_blanks():
            c = self.text[self.pos]
            if c == "\n":
                out.append(Token("newline", self.line))
                self.pos += 1
                self.line += 1
            elif c.isdigit() and self.text[self.pos + 1 : self.pos + 2] in ("<", ">"):
                self.pos += 1
                out.append(self._redirect(int(c)))
            elif c in "<>":
                out.append(self._redirect(0 if c == "<" else 1))
            elif c in _META:
                op = next(o for o in _OPERATORS if self.text.startswith(o, self.pos))
                if op == ";;":
                    raise ShellSyntaxError('Syntax error: ";;" unexpected', self.line)
                self.pos += len(op)
                out.append(Token("op", self.line, op=op))
            else:
                out.append(Token("word", self.line, word=self._word()))
        return out

    def _skip_blanks(self) -> bool:
        """Skip blanks, line continuations and comments; False at end of input."""
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t":
                self.pos += 1
            elif text.startswith("\\\n", self.pos):
                self.pos += 2
                self.line += 1
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return True
        return False

    def _redirect(self, fd: int) -> Token:
        op = next(o for o in _REDIRECTS if self.text.startswith(o, self.pos))
        self.pos += len(op)
        if not self._skip_blanks() or self.text[self.pos] in _META:
            found = "end of file" if self.pos >= len(self.text) else f'"{self.text[self.pos]}"'
            raise ShellSyntaxError(f"Syntax error: {found} unexpected", self.line)
        return Token("redirect", self.line, word=self._word(), op=op, fd=fd)

    def _word(self) -> Word:
        parts: list[Part] = []
        text = self.text
        while self.pos < len(text) and text[self.pos] not in _META:
            c = text[self.pos]
            if c == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("Syntax error: Unterminated quoted string", self.line)
                parts.append(Part("text", text[self.pos + 1 : end], quoted=True))
                self.line += text.count("\n", self.pos, end)
                self.pos = end + 1
            elif c == '"':
                self.pos += 1
                parts.extend(self._double_quoted())
            elif c == "\\":
                escaped = text[self.pos + 1 : self.pos + 2]
                self.pos += 2
                if escaped == "\n":
                    self.line += 1
                else:
                    parts.append(Part("text", escaped or "\\", quoted=True))
            elif c in "$`":
                parts.append(self._expansion(quoted=False))
            else:
                parts.append(Part("text", c, quoted=False))
                self.pos += 1
        return _merge(parts)

    def _double_quoted(self) -> list[Part]:
        parts: list[Part] = [Part("text", "", quoted=True)]  # "" is an (empty) argument
        text = self.text
        while True:
            if self.pos >= len(text):
                raise ShellSyntaxError("Syntax error: Unterminated quoted string", self.line)
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return parts
            if c == "\\" and text[self.pos + 1 : self.pos + 2] in ('"', "\\", "$", "`", "\n"):
                escaped = text[self.pos + 1]
                self.pos += 2
                if escaped != "\n":
                    parts.append(Part("text", escaped, quoted=True))
            elif c in "$`":
                parts.append(self._expansion(quoted=True))
            else:
                self.line += c == "\n"
                parts.append(Part("text", c, quoted=True))
                self.pos += 1

    def _expansion(self, quoted: bool) -> Part:
        text = self.text
        if text[self.pos] == "`" or text.startswith("$(", self.pos):
            # Neither the demo nor the tests substitute commands, so kubesim's shell does not.
            raise ShellSyntaxError(
                "command substitution is not supported by kubesim's shell", self.line
            )
        self.pos += 1  # the "$"
        nxt = text[self.pos : self.pos + 1]
        if nxt == "{":
            end = text.find("}", self.pos)
            name = text[self.pos + 1 : end] if end > 0 else ""
            if not is_name(name) and name not in _SPECIAL_PARAMETERS:
                raise ShellSyntaxError(f"${{{name}}}: Bad substitution", self.line)
            self.pos = end + 1
            return Part("param", name, quoted)
        if nxt and nxt in _SPECIAL_PARAMETERS:
            self.pos += 1
            return Part("param", nxt, quoted)
        end = self.pos
        while end < len(text) and (text[end].isalnum() or text[end] == "_"):
            end += 1
        if end == self.pos or text[self.pos].isdigit():
            return Part("text", "$", quoted)
        name, self.pos = text[self.pos : end], end
        return Part("param", name, quoted)


def is_name(text: str) -> bool:
    return bool(text) and not text[0].isdigit() and all(c.isalnum() or c == "_" for c in text)


def _merge(parts: list[Part]) -> Word:
    merged: list[Part] = []
    for part in parts:
        last = merged[-1] if merged else None
        if last is not None and part.kind == last.kind == "text" and part.quoted == last.quoted:
            merged[-1] = Part("text", last.value + part.value, last.quoted)
        else:
            merged.append(part)
    return tuple(merged)


def tokenize(text: str) -> list[Token]:
    return _Lexer(text).tokens()
