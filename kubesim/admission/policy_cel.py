"""The CEL that ValidatingAdmissionPolicy expressions run on: cel-python (`celpy`), a real CEL
implementation, behind two calls (`compile_expression`, `evaluate`).

kube-apiserver uses cel-go with the Kubernetes type checker. celpy parses but does not type-check,
so an expression that names an unknown variable or field compiles here and fails when it runs
(kube-apiserver refuses it at create time); kubesim/README.md lists this difference. Error texts
are rewritten into cel-go's wording where the two implementations only differ in phrasing
("no such key: labels"), because policy authors and tests read them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from kubesim.admission.policy_authorizer import AUTHORIZER_FUNCTIONS

_ENVIRONMENT: Final = celpy.Environment()
_NO_SUCH_MEMBER: Final = re.compile(r"no such member in mapping: '([^']*)'")
_UNDECLARED: Final = re.compile(r"undeclared reference to '([^']*)'")


class CelCompileError(Exception):
    """The expression is not valid CEL; `str()` is the message for `compilation failed: …`."""


class CelEvalError(Exception):
    """Evaluating the expression failed (missing key, no overload, division by zero...)."""


@dataclass(frozen=True)
class CompiledExpression:
    expression: str
    program: Any  # celpy.Runner; untyped upstream


# Parsing is the costly part (celpy's Lark grammar) and policies are evaluated on every
# admitted request, so programs are kept per expression text.
@functools.lru_cache(maxsize=2048)
def compile_expression(expression: str) -> CompiledExpression:
    try:
        ast = _ENVIRONMENT.compile(expression)
    except CELParseError as exc:
        detail = str(exc.args[0]) if exc.args else str(exc)
        raise CelCompileError(f"ERROR: <input>: Syntax error: {detail.strip()}") from None
    functions = {**AUTHORIZER_FUNCTIONS, "_[_]": _index}
    return CompiledExpression(expression, _ENVIRONMENT.program(ast, functions=functions))


def _index(container: Any, key: Any) -> Any:
    """`a[b]` with cel-go's semantics: an error in `a` propagates (celpy would report a
    missing overload instead), and a missing key or index is named."""
    if isinstance(container, CELEvalError):
        return container
    try:
        return container[key]
    except KeyError:
        return CELEvalError(f"no such key: {key}")
    except IndexError:
        return CELEvalError(f"index out of bounds: {key}")
    except TypeError:
        return CELEvalError("no such overload")


def to_cel(value: Any) -> Any:
    """JSON-shaped data (objects, the request) as CEL values; None stays null."""
    return json_to_cel(value)


def evaluate(compiled: CompiledExpression, activation: Mapping[str, Any]) -> Any:
    """The CEL result as a Python value (bool, str, int, float, list, dict or None)."""
    try:
        result = compiled.program.evaluate(dict(activation))
    except CELEvalError as exc:
        raise CelEvalError(_go_wording(exc)) from None
    if isinstance(result, CELEvalError):
        raise CelEvalError(_go_wording(result))
    return _from_cel(result)


def _go_wording(error: CELEvalError) -> str:
    message = str(error.args[0]) if error.args else str(error)
    if match := _NO_SUCH_MEMBER.search(message):
        return f"no such key: {match.group(1)}"
    if match := _UNDECLARED.search(message):
        return f"undeclared reference to '{match.group(1)}'"
    if message.startswith("found no matching overload"):
        return "no such overload"
    return message


def _from_cel(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, (celtypes.IntType, celtypes.UintType)):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.MapType):
        return {_from_cel(k): _from_cel(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [_from_cel(v) for v in value]
    return value
