"""The CEL environment of kubesim's admission: compile once, evaluate per request.

kube-apiserver evaluates `matchConditions` of admission webhooks and the expressions of
ValidatingAdmissionPolicies with cel-go plus the Kubernetes CEL libraries. kubesim uses the
cel-python implementation (`celpy`) for the language itself and adds the Kubernetes library
functions it can express over plain values (the strings, lists and regex extensions). Values go
in and come out as JSON-like Python values (dict, list, str, int, float, bool, None), the shape
the objects have on the wire.

Differences from kube-apiserver, because celpy is dynamically typed: expressions are not
type-checked against the resource's OpenAPI schema, so `object.spec.nope` is an evaluation
error (no such key) rather than a compile error; compiling does check syntax, that every
function is one the environment has, and that every free identifier is a declared variable.
Cost limits are not enforced. The `authorizer` library is kubesim's RBAC
(`cel_authorizer.py`); the `url`, `ip`, `cidr`, `quantity` and `semver` libraries are not
provided.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, CELUnsupportedError

from kubesim.admission.cel_authorizer import AUTHORIZER_FUNCTIONS, CelAuthorizer

# What each kind of admission expression may name (apiserver/pkg/admission/plugin/cel): a
# webhook's matchConditions have no params; a policy's messageExpression gets no authorizer,
# its matchConditions no variables.
WEBHOOK_CONDITION_VARIABLES: Final = frozenset({"object", "oldObject", "request", "authorizer"})
POLICY_VALIDATION_VARIABLES: Final = frozenset(
    {"object", "oldObject", "request", "params", "namespaceObject", "authorizer", "variables"}
)
POLICY_MESSAGE_VARIABLES: Final = POLICY_VALIDATION_VARIABLES - {"authorizer"}
POLICY_CONDITION_VARIABLES: Final = POLICY_VALIDATION_VARIABLES - {"variables"}

# The macros bind a comprehension variable (their first argument) for the rest of the call.
_BINDING_MACROS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})
_BUILTIN_FUNCTIONS: Final = frozenset(celpy.evaluation.base_functions) | {"has", "dyn"}


class CelCompileError(ValueError):
    """The expression is not valid CEL for this environment; the message says why."""


class CelEvaluationError(Exception):
    """Evaluating a compiled expression failed (no such key, division by zero, bad types)."""


@dataclass(frozen=True)
class Program:
    """A compiled expression, ready to evaluate many times."""

    expression: str
    runner: celpy.Runner


def _text(value: Any) -> celtypes.StringType:
    return celtypes.StringType(value)


def _strings(values: Iterable[str]) -> celtypes.ListType:
    return celtypes.ListType([_text(v) for v in values])


def _index_of(target: Any, item: Any, start: int = 0) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.find(item, int(start)))
    items = list(target)
    return celtypes.IntType(items.index(item) if item in items else -1)


def _last_index_of(target: Any, item: Any) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.rfind(item))
    items = list(target)
    return celtypes.IntType(len(items) - 1 - items[::-1].index(item) if item in items else -1)


def _split(text: str, separator: str, limit: int = -1) -> celtypes.ListType:
    if limit == 0:
        return celtypes.ListType([])
    return _strings(text.split(separator, int(limit) - 1 if limit > 0 else -1))


def _replace(text: str, old: str, new: str, limit: int = -1) -> celtypes.StringType:
    return _text(text.replace(old, new, int(limit)))


def _substring(text: str, start: int, end: int | None = None) -> celtypes.StringType:
    stop = len(text) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(text):
        raise ValueError(f"index out of range: {start}, {stop}")
    return _text(text[int(start) : stop])


def _join(items: Iterable[str], separator: str = "") -> celtypes.StringType:
    return _text(separator.join(items))


def _find(text: str, pattern: str) -> celtypes.StringType:
    found = re.search(pattern, text)
    return _text(found.group(0) if found else "")


def _find_all(text: str, pattern: str, limit: int = -1) -> celtypes.ListType:
    matches = [m.group(0) for m in re.finditer(pattern, text)]
    return _strings(matches if limit < 0 else matches[: int(limit)])


def _is_sorted(items: Iterable[Any]) -> celtypes.BoolType:
    values = list(items)
    return celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(values)))


# The Kubernetes CEL libraries (k8s.io/apiserver/pkg/cel/library and cel-go's strings
# extension) that can be written over plain values.
KUBERNETES_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "charAt": lambda text, index: _text(text[int(index)] if int(index) < len(text) else ""),
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": lambda text: _text(text.lower()),
    "upperAscii": lambda text: _text(text.upper()),
    "replace": _replace,
    "split": _split,
    "substring": _substring,
    "trim": lambda text: _text(text.strip()),
    "join": _join,
    "find": _find,
    "findAll": _find_all,
    "isSorted": _is_sorted,
    "sum": lambda items: functools.reduce(lambda a, b: a + b, items, celtypes.IntType(0)),
    "min": lambda items: min(items),
    "max": lambda items: max(items),
}


def _index(container: Any, key: Any) -> Any:
    """`a[b]` as cel-go evaluates it: an error in `a` (a missing key further left) is the
    result, where celpy would report a missing `_[_]` overload and lose it; a missing key or
    index is named."""
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


_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    **KUBERNETES_FUNCTIONS,
    **AUTHORIZER_FUNCTIONS,
    "_[_]": _index,
}
_KNOWN_FUNCTIONS: Final = _BUILTIN_FUNCTIONS | _BINDING_MACROS | frozenset(_FUNCTIONS)
_ENVIRONMENT: Final = celpy.Environment()
_CELPY_NO_SUCH_KEY: Final = "no such member in mapping: "
_CEL_GO_WORDING: Final = {"modulus or divide by zero": "division by zero"}


def _token(node: Any) -> str:
    return str(node) if isinstance(node, lark.Token) else ""


def _check_references(node: Any, variables: frozenset[str], bound: frozenset[str]) -> None:
    """Reject unknown functions and undeclared variables, which celpy would only notice when
    evaluating (cel-go's checker refuses them when the expression is compiled)."""
    if not isinstance(node, lark.Tree):
        return
    children = list(node.children)
    if node.data == "ident":
        name = _token(children[0])
        if name not in variables and name not in bound:
            raise CelCompileError(f"undeclared reference to '{name}'")
        return
    function = ""
    if node.data == "ident_arg":
        function = _token(children[0])
    elif node.data == "member_dot_arg":
        function = _token(children[1])
    if function and function not in _KNOWN_FUNCTIONS:
        raise CelCompileError(f"undeclared reference to '{function}'")
    if node.data == "member_dot_arg" and function in _BINDING_MACROS:
        _check_references(children[0], variables, bound)
        arguments = children[2].children if len(children) > 2 else []
        if not arguments:
            return
        variable = _comprehension_variable(arguments[0])
        for argument in arguments[1:]:
            _check_references(argument, variables, bound | {variable})
        return
    for child in children:
        _check_references(child, variables, bound)


def _comprehension_variable(node: Any) -> str:
    names = [t for t in node.scan_values(lambda v: isinstance(v, lark.Token))]
    if len(names) != 1:
        raise CelCompileError("argument must be a simple name")
    return str(names[0])


@functools.lru_cache(maxsize=1024)
def compile(expression: str, variables: frozenset[str]) -> Program:
    """Parse and check `expression` for an environment that declares `variables`.

    Raises CelCompileError. Programs are cached by (expression, variables): admission compiles
    the same few expressions on every request."""
    try:
        tree = _ENVIRONMENT.compile(expression)
    except CELParseError as exc:
        raise CelCompileError(f"Syntax error: {str(exc).strip()}") from exc
    _check_references(tree, variables, frozenset())
    return Program(expression, _ENVIRONMENT.program(tree, functions=dict(_FUNCTIONS)))


def evaluate(program: Program, activation: Mapping[str, Any]) -> Any:
    """Evaluate `program` with JSON-like values for its variables; the result is JSON-like too
    (a CEL bool comes back as a Python bool). Raises CelEvaluationError."""
    values = {
        name: value if isinstance(value, CelAuthorizer) else json_to_cel(value)
        for name, value in activation.items()
    }
    try:
        result = program.runner.evaluate(values)
    except (CELEvalError, CELUnsupportedError) as exc:
        raise CelEvaluationError(_first_line(exc)) from exc
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as exc:
        raise CelEvaluationError(str(exc)) from exc
    if isinstance(result, CELEvalError):
        raise CelEvaluationError(_first_line(result))
    return _plain(result)


def _first_line(exc: Exception) -> str:
    # celpy puts the whole activation into some messages; the first argument is the reason.
    reason = str(exc.args[0] if exc.args else exc).split(" (in activation", 1)[0]
    # cel-go's words for the errors people meet most, as kube-apiserver reports them.
    if reason.startswith(_CELPY_NO_SUCH_KEY):
        return "no such key: " + reason.removeprefix(_CELPY_NO_SUCH_KEY).strip("'")
    return _CEL_GO_WORDING.get(reason, reason)


def _plain(value: Any) -> Any:
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, (celtypes.IntType, celtypes.UintType)):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.MapType):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [_plain(v) for v in value]
    return value
