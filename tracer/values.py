"""Exported values (docs/trace-format.md, *Values*) read back for display.

An export writes a param that JSON has no type for as ``{"type": ..., "repr": ...}``.
To show a statement with its params written in (``sqldisplay.interpolate``), the
common ones are made Python values again: decimals, dates and times, UUIDs, bytes,
non-finite floats. Their ``repr`` is read by a tiny evaluator that knows only those
constructors (never ``eval``: an imported trace is data from anywhere). Anything else
stays an ``Opaque`` value, written into the SQL as its ``repr`` in quotes.
"""

from __future__ import annotations

import ast
import datetime
import decimal
import uuid
from typing import Any

#: What a name in a repr may refer to.
_CONSTANTS: dict[str, Any] = {
    "datetime.timezone.utc": datetime.timezone.utc,
}
#: The constructors a repr may call.
_CALLABLES: dict[str, Any] = {
    "Decimal": decimal.Decimal,
    "UUID": uuid.UUID,
    "datetime.datetime": datetime.datetime,
    "datetime.date": datetime.date,
    "datetime.time": datetime.time,
    "datetime.timedelta": datetime.timedelta,
    "datetime.timezone": datetime.timezone,
}
#: Types whose repr is a Python literal.
_LITERALS = frozenset(("builtins.bytes", "builtins.bytearray"))


class Opaque:
    """A value known only by its type and repr."""

    def __init__(self, type_path: str, text: str) -> None:
        self.type_path = type_path
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def is_value_dict(value: Any) -> bool:
    """Whether ``value`` is an export's ``{"type": ..., "repr": ...}``."""
    return (
        isinstance(value, dict)
        and set(value) == {"type", "repr"}
        and isinstance(value["type"], str)
        and isinstance(value["repr"], str)
    )


def python(value: Any) -> Any:
    """An exported value as a Python value, as close to the original as can be read
    back safely (lists stay lists, objects stay dicts)."""
    if isinstance(value, list):
        return [python(item) for item in value]
    if is_value_dict(value):
        return _from_repr(value["type"], value["repr"])
    if isinstance(value, dict):
        return {key: python(item) for key, item in value.items()}
    return value


def text(value: Any) -> str:
    """An exported value as Python would write it: ``'Ann'``, ``Decimal('10')``,
    ``None``, ``[1, 2]``."""
    if is_value_dict(value):
        return str(value["repr"])
    if isinstance(value, list):
        return "[" + ", ".join(text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {text(item)}" for key, item in value.items()) + "}"
    return repr(value)


def type_name(value: Any) -> str:
    """The Python type of an exported value: ``decimal.Decimal``, ``str``, ``NoneType``."""
    if is_value_dict(value):
        return str(value["type"])
    return type(value).__name__


def _from_repr(type_path: str, text: str) -> Any:
    try:
        if type_path == "builtins.float":
            return float(text)
        if type_path in _LITERALS:
            literal = ast.literal_eval(text.removeprefix("bytearray(").removesuffix(")"))
            if isinstance(literal, bytes):
                return literal
        elif type_path != "builtins.str":  # a string that is not text (a lone surrogate)
            found = _evaluate(ast.parse(text, mode="eval").body)
            if f"{type(found).__module__}.{type(found).__qualname__}" == type_path:
                return found
    except (ValueError, TypeError, SyntaxError, ArithmeticError, OverflowError):
        pass
    return Opaque(type_path, text)


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        operand = _evaluate(node.operand)
        if isinstance(operand, (int, float)):
            return -operand
    if isinstance(node, (ast.Name, ast.Attribute)) and _dotted(node) in _CONSTANTS:
        return _CONSTANTS[_dotted(node)]
    if isinstance(node, ast.Call) and _dotted(node.func) in _CALLABLES:
        arguments = [_evaluate(argument) for argument in node.args]
        keywords = {item.arg: _evaluate(item.value) for item in node.keywords if item.arg}
        if len(keywords) != len(node.keywords):
            raise ValueError("** arguments")
        return _CALLABLES[_dotted(node.func)](*arguments, **keywords)
    raise ValueError(f"not a known value: {ast.dump(node)[:50]}")


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""
