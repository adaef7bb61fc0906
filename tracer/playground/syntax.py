"""The syntax tree of an expression, checked against an allow-list of node types
before anything is built; and character offsets in the text for its nodes."""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from typing import Any

from tracer.playground.expression import PlaygroundError

__all__ = ["MAX_DEPTH", "MAX_NODES", "OPERATORS", "Positions", "check_syntax", "syntax_tree"]

#: Deepest nesting of the syntax tree accepted.
MAX_DEPTH = 100
#: Most syntax tree nodes accepted.
MAX_NODES = 600


def syntax_tree(text: str, lead: int) -> tuple[ast.Expression, Positions]:
    """The syntax tree of ``text[lead:]``. A chain written over several lines needs no
    parentheses around it (as in a text box): it is read as if it had them."""
    source = text[lead:]
    positions = Positions(text, lead, "")
    try:
        return _parse(source), positions
    except SyntaxError as exc:
        if "\n" in source or "\r" in source:
            wrapped = Positions(text, lead, "(")
            try:
                tree = _parse(f"({source}\n)")
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                tree = None
            # The body must lie inside the added parentheses ("1) + (2" is no expression).
            if tree is not None and (tree.body.lineno, tree.body.col_offset) != (1, 0):
                return tree, wrapped
        start, end = positions.syntax_error(exc)
        raise PlaygroundError(f"Not valid Python: {exc.msg}.", text, start, end) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise PlaygroundError(f"Not valid Python: {exc}.", text, 0, len(text)) from None


def _parse(source: str) -> ast.Expression:
    # Invalid escapes in strings ("\d") warn while parsing: not the caller's business.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, mode="eval")


# Positions ---------------------------------------------------------------------------

_NEWLINE = re.compile(r"\r\n|\r|\n")


class Positions:
    """Character offsets in the text from the syntax tree's line numbers and UTF-8
    byte columns (of ``prefix + text[lead:]``, the source that was parsed)."""

    def __init__(self, text: str, lead: int, prefix: str) -> None:
        self.text = text
        self.lead = lead
        self.prefix = len(prefix)
        source = prefix + text[lead:]
        self.starts = [0] + [match.end() for match in _NEWLINE.finditer(source)]
        self.source = source

    def offset(self, lineno: int, col: int) -> int:
        index = min(max(lineno, 1), len(self.starts)) - 1
        start = self.starts[index]
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.source)
        line = self.source[start:end].encode("utf-8")
        position = start + len(line[:col].decode("utf-8", errors="ignore")) - self.prefix
        return min(max(self.lead + position, 0), len(self.text))

    def span(self, node: Any) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)
        end_line = getattr(node, "end_lineno", None) or node.lineno
        end_col = getattr(node, "end_col_offset", None)
        end = self.offset(end_line, end_col) if end_col is not None else start + 1
        return start, max(end, start)

    def name_span(self, node: ast.Attribute) -> tuple[int, int]:
        """Offsets of an attribute's name as written: Python reads names in NFKC
        form, so ``node.attr`` may be longer than the text (``ﬁlter`` is ``filter``)."""
        _, end = self.span(node)
        start = end
        while start > 0 and ("a" + self.text[start - 1]).isidentifier():
            start -= 1
        return start, end

    def token(self, symbol: str, start: int, end: int) -> int:
        """Where the operator ``symbol`` is first written between ``start`` and
        ``end`` as a token (not inside a comment); ``start`` if it is not."""
        # Universal newlines, so that rows are counted as _NEWLINE counts them.
        fragment = io.StringIO(self.text[start:end], newline=None).readline
        lines = [0] + [m.end() for m in _NEWLINE.finditer(self.text, start, end)]
        try:
            for token in tokenize.generate_tokens(fragment):
                if token.type == tokenize.OP and token.string == symbol:
                    row, col = token.start
                    return (start + col) if row == 1 else lines[row - 1] + col
        except (tokenize.TokenError, SyntaxError):
            pass
        found = self.text.find(symbol, start, end)
        return found if found >= 0 else start

    def source_of(self, node: Any) -> str:
        start, end = self.span(node)
        return self.text[start:end]

    def syntax_error(self, exc: SyntaxError) -> tuple[int, int]:
        # SyntaxError columns count characters (1-based), not bytes.
        lineno = exc.lineno or 1
        index = min(max(lineno, 1), len(self.starts)) - 1
        base = self.lead + self.starts[index]
        start = base + max((exc.offset or 1) - 1, 0)
        end_offset = getattr(exc, "end_offset", None)
        end_lineno = getattr(exc, "end_lineno", None)
        if end_offset and end_lineno == lineno and end_offset > (exc.offset or 0):
            end = base + end_offset - 1
        else:
            end = start + 1
        return min(start, len(self.text)), min(end, len(self.text))


# The syntax allow-list ------------------------------------------------------------------

_ALLOWED_NODES = (
    ast.Expression,
    ast.Call,
    ast.Attribute,
    ast.Name,
    ast.Constant,
    ast.keyword,
    ast.Subscript,
    ast.Slice,
    ast.BinOp,
    ast.UnaryOp,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.Load,
    ast.BitOr,
    ast.BitAnd,
    ast.BitXor,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.Pow,
    ast.USub,
    ast.UAdd,
    ast.Invert,
)

_REFUSED_NODES: dict[type, str] = {
    ast.Lambda: "lambda functions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed: write a plain string",
    ast.FormattedValue: "f-strings are not allowed: write a plain string",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Starred: "* unpacking is not allowed: write the arguments",
    ast.IfExp: "conditional expressions (x if y else z) are not allowed",
    ast.Compare: "comparisons are not allowed: write lookups such as price__lt=10",
    ast.BoolOp: "and/or are not allowed: combine Q objects with & and |",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}

OPERATORS: dict[type, str] = {
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
    ast.Pow: "**",
}
_OTHEROPERATORS: dict[type, str] = {
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
}
METHODS_OF = {ast.BitOr: "__or__", ast.BitAnd: "__and__", ast.BitXor: "__xor__"}


def check_syntax(tree: ast.AST, text: str, positions: Positions) -> None:
    """Refuse any node outside the allow-list, and trees too deep or too big; in
    reading order, before anything is built."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise PlaygroundError(
                f"The expression has more than {MAX_NODES} parts; make it smaller.",
                text,
                *_span_or_all(node, positions, text),
            )
        if depth > MAX_DEPTH:
            raise PlaygroundError(
                f"The expression is nested more than {MAX_DEPTH} levels deep.",
                text,
                *_span_or_all(node, positions, text),
            )
        _check_node(node, text, positions)
        children = list(ast.iter_child_nodes(node))
        stack.extend((child, depth + 1) for child in reversed(children))


def _span_or_all(node: ast.AST, positions: Positions, text: str) -> tuple[int, int]:
    if hasattr(node, "lineno"):
        return positions.span(node)
    return 0, len(text)


def _check_node(node: ast.AST, text: str, positions: Positions) -> None:
    def refuse(message: str, at: ast.AST = node) -> None:
        raise PlaygroundError(message + ".", text, *_span_or_all(at, positions, text))

    if not isinstance(node, _ALLOWED_NODES):
        reason = _REFUSED_NODES.get(type(node))
        if reason is None:
            if isinstance(node, ast.operator):
                reason = "this operator is not allowed"
            elif isinstance(node, ast.unaryop):
                reason = "not is not allowed: negate a Q object with ~Q(...)"
            else:
                reason = f"{type(node).__name__} is not allowed in an expression"
        refuse(reason)
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        refuse(f"{node.id}: names starting with an underscore are never allowed")
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise PlaygroundError(
            f"{node.attr}: attributes starting with an underscore are never allowed.",
            text,
            *positions.name_span(node),
        )
    if isinstance(node, ast.Constant) and not isinstance(
        node.value, (str, bytes, int, float, bool, type(None))
    ):
        refuse(f"{type(node.value).__name__} literals are not allowed")
    if isinstance(node, ast.Call):
        for keyword in node.keywords:
            if keyword.arg is None:
                refuse("** unpacking is not allowed: write the keyword arguments", keyword)
            elif keyword.arg.startswith("_"):
                refuse(
                    f"{keyword.arg}: keyword arguments starting with an underscore are "
                    "never allowed",
                    keyword,
                )
    if isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load):
        refuse("assignment is not allowed")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        refuse("not is not allowed: negate a Q object with ~Q(...)")
    if isinstance(node, ast.BinOp) and type(node.op) not in OPERATORS:
        symbol = _OTHEROPERATORS.get(type(node.op), type(node.op).__name__)
        refuse(f"the operator {symbol} is not allowed")
    if isinstance(node, ast.Slice) and node.step is not None:
        refuse("a slice with a step evaluates the QuerySet; only [start:stop] is allowed")
