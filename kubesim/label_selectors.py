"""Label selector parsing and matching, as k8s.io/apimachinery/pkg/labels does it.

The same lexer and recursive-descent grammar (so the same strings are accepted and refused),
the same key and value rules (a qualified name with an optional DNS-subdomain prefix; values
of at most 63 characters), and the same matching: `in`/`=`/`==` need the key present,
`notin`/`!=` also match when it is absent, `>`/`<` compare base-10 int64 values and never
match a non-integer label, and an empty value inside a set (`x in (a,)`, `x in ()`) stands
for the empty label value. Parse errors carry apimachinery's wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from kubesim.validation import label_key_problems, label_value_problems

Labels = Mapping[str, str]

_SPECIAL: Final = frozenset("=!(),><")
_WHITESPACE: Final = frozenset(" \t\r\n")
_KEYWORDS: Final = {
    ")": "CPAR",
    ",": "COMMA",
    "!": "NOT",
    "==": "DOUBLEEQ",
    "=": "EQ",
    ">": "GT",
    "in": "IN",
    "<": "LT",
    "!=": "NEQ",
    "notin": "NOTIN",
    "(": "OPAR",
}
_OPERATORS: Final = {
    "IN": "in",
    "EQ": "=",
    "DOUBLEEQ": "==",
    "GT": "gt",
    "LT": "lt",
    "NOTIN": "notin",
    "NEQ": "!=",
}
_BINARY_OPERATORS: Final = "in, notin, =, ==, !=, gt, lt"
_INT64: Final = re.compile(r"^[+-]?[0-9]+$")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class SelectorSyntaxError(ValueError):
    """A selector apimachinery's parser refuses; the message is its wording."""


def _quote(value: str) -> str:
    # Go's %q for the plain strings found here.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lex(selector: str) -> list[tuple[str, str]]:
    """The token stream (kind, literal), ending with ("END", "")."""
    tokens: list[tuple[str, str]] = []
    pos, size = 0, len(selector)
    while True:
        while pos < size and selector[pos] in _WHITESPACE:
            pos += 1
        if pos >= size:
            tokens.append(("END", ""))
            return tokens
        if selector[pos] in _SPECIAL:
            # The longest run of special characters that is still an operator.
            best, end = "", pos
            while end < size and selector[end] in _SPECIAL:
                candidate = selector[pos : end + 1]
                if candidate in _KEYWORDS:
                    best = candidate
                elif best:
                    break
                end += 1
            pos += len(best)
            tokens.append((_KEYWORDS[best], best))
            continue
        start = pos
        while pos < size and selector[pos] not in _SPECIAL and selector[pos] not in _WHITESPACE:
            pos += 1
        literal = selector[start:pos]
        tokens.append((_KEYWORDS.get(literal, "ID"), literal))


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # in, notin, =, ==, !=, gt, lt, exists, !
    values: tuple[str, ...]

    def matches(self, labels: Labels) -> bool:
        present = self.key in labels
        if self.operator in ("in", "=", "=="):
            return present and labels[self.key] in self.values
        if self.operator in ("notin", "!="):
            return not present or labels[self.key] not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        # gt / lt: both sides must be int64s, or nothing matches.
        if not present or not _is_int64(labels[self.key]) or not _is_int64(self.values[0]):
            return False
        have, want = int(labels[self.key]), int(self.values[0])
        return have > want if self.operator == "gt" else have < want


def _is_int64(value: str) -> bool:
    return bool(_INT64.match(value)) and _INT64_MIN <= int(value) <= _INT64_MAX


def _new_requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """apimachinery NewRequirement's checks, with its error wording."""
    problems = [f"<nil>: Invalid value: {_quote(key)}: {p}" for p in label_key_problems(key)]
    if operator in ("gt", "lt"):
        for i, value in enumerate(values):
            if not _is_int64(value):
                problems.append(
                    f"values[{i}]: Invalid value: {_quote(value)}: for 'Gt', 'Lt' operators, "
                    "the value must be an integer"
                )
    for i, value in enumerate(values):
        problems += [
            f"values[{i}][{key}]: Invalid value: {_quote(value)}: {p}"
            for p in label_value_problems(value)
        ]
    if problems:
        joined = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise SelectorSyntaxError(f"unable to parse requirement: {joined}")
    return Requirement(key, operator, tuple(values))


class _Parser:
    def __init__(self, selector: str) -> None:
        self.tokens = _lex(selector)
        self.position = 0

    def _peek(self, values: bool = True) -> tuple[str, str]:
        kind, literal = self.tokens[self.position]
        # Inside values, `in` and `notin` are plain identifiers.
        return ("ID" if values and kind in ("IN", "NOTIN") else kind), literal

    def _next(self, values: bool = True) -> tuple[str, str]:
        token = self._peek(values)
        self.position += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self._peek()
            if kind == "END":
                return requirements
            if kind not in ("ID", "NOT"):
                raise SelectorSyntaxError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )
            requirements.append(self._requirement())
            kind, literal = self._next()
            if kind == "END":
                return requirements
            if kind != "COMMA":
                raise SelectorSyntaxError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self._peek()
            if kind not in ("ID", "NOT"):
                raise SelectorSyntaxError(f"found '{literal}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        operator = ""
        kind, key = self._next()
        if kind == "NOT":
            operator = "!"
            kind, key = self._next()
        if kind != "ID":
            raise SelectorSyntaxError(
                f"unable to parse requirement: found '{key}', expected: identifier"
            )
        problems = label_key_problems(key)
        if problems:
            raise SelectorSyntaxError(
                f"unable to parse requirement: <nil>: Invalid value: {_quote(key)}: "
                + "; ".join(problems)
            )
        if self._peek()[0] in ("END", "COMMA") and operator != "!":
            operator = "exists"
        if operator in ("exists", "!"):
            return _new_requirement(key, operator, [])
        kind, literal = self._next(values=False)
        if kind not in _OPERATORS:
            raise SelectorSyntaxError(
                f"unable to parse requirement: found '{literal}', expected: {_BINARY_OPERATORS}"
            )
        operator = _OPERATORS[kind]
        values = self._set_values() if operator in ("in", "notin") else self._exact_value()
        return _new_requirement(key, operator, sorted(set(values)))

    def _set_values(self) -> list[str]:
        kind, literal = self._next()
        if kind != "OPAR":
            raise SelectorSyntaxError(
                f"unable to parse requirement: found '{literal}' expected: '('"
            )
        kind, literal = self._peek()
        if kind == "CPAR":  # "()" is the empty value
            self._next()
            return [""]
        if kind not in ("ID", "COMMA"):
            raise SelectorSyntaxError(
                f"unable to parse requirement: found '{literal}', expected: ',', ')' or identifier"
            )
        values = self._identifiers()
        if self._next()[0] != "CPAR":
            raise SelectorSyntaxError(
                f"unable to parse requirement: found '{literal}', expected: ')'"
            )
        return values

    def _identifiers(self) -> list[str]:
        """A comma-separated list whose empty entries are the empty value: `(,a)`, `(a,,b)`."""
        values: list[str] = []
        while True:
            kind, literal = self._next()
            if kind == "ID":
                values.append(literal)
                following, text = self._peek()
                if following == "COMMA":
                    continue
                if following == "CPAR":
                    return values
                raise SelectorSyntaxError(
                    f"unable to parse requirement: found '{text}', expected: ',' or ')'"
                )
            if kind != "COMMA":
                raise SelectorSyntaxError(
                    f"unable to parse requirement: found '{literal}', expected: ',', or identifier"
                )
            if not values:
                values.append("")
            if self._peek()[0] in ("CPAR", "COMMA"):
                values.append("")
                if self._peek()[0] == "CPAR":
                    return values

    def _exact_value(self) -> list[str]:
        if self._peek()[0] in ("END", "COMMA"):
            return [""]
        kind, literal = self._next()
        if kind != "ID":
            raise SelectorSyntaxError(
                f"unable to parse requirement: found '{literal}', expected: identifier"
            )
        return [literal]


def parse_label_selector(selector: str) -> list[Requirement]:
    """The requirements of a selector (sorted by key, as upstream); SelectorSyntaxError when
    apimachinery would refuse it."""
    return sorted(_Parser(selector).parse(), key=lambda r: r.key)


def label_matcher(selector: str) -> Callable[[Labels], bool]:
    requirements = parse_label_selector(selector)
    return lambda labels: all(r.matches(labels) for r in requirements)
