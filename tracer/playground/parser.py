"""Read a QuerySet expression and build the QuerySet, never evaluating it as Python.

``parse(text)`` parses the text with ``ast.parse(mode="eval")``, checks every node of
the syntax tree against an allow-list, then interprets the tree: model names are
looked up among the installed models, managers in ``Model._meta.managers_map``, and
only the QuerySet methods, callables and literal values in ``tracer.playground.allowed``
are used. Chained methods (``filter``, ``order_by``, ``[:10]`` ...) are called to build
the QuerySet, which runs no query; a method that would run one (``count()``) or write
(``update()``) may only end the expression, and is recorded, not called.

Anything else is refused with a ``PlaygroundError`` that says why and where: the
character offsets of the offending part of the text (``error.start``, ``error.end``),
and ``error.pointer()`` draws a caret line under it.
"""

from __future__ import annotations

from tracer.guard import no_queries
from tracer.playground.building import MAX_CALLS, Builder, Names
from tracer.playground.expression import Expression, MethodCall, PlaygroundError
from tracer.playground.syntax import MAX_DEPTH, MAX_NODES, check_syntax, syntax_tree

__all__ = [
    "MAX_CALLS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "Expression",
    "MethodCall",
    "PlaygroundError",
    "parse",
]

#: Longest expression accepted, in characters.
MAX_LENGTH = 2000


def parse(text: str, *, app: str | None = None) -> Expression:
    """Parse and build a QuerySet expression, or raise PlaygroundError.

    ``app``: an app label whose models bare names (``Book``) refer to first; without
    it a bare name must name exactly one installed model (else write ``app.Book``).
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() takes a str, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise PlaygroundError(
            f"The expression is {len(text):,} characters long; at most {MAX_LENGTH:,} "
            "are accepted.",
            text,
            MAX_LENGTH,
            len(text),
        )
    stripped = text.lstrip()
    if not stripped.strip():
        raise PlaygroundError(
            "Type a QuerySet expression, e.g. Book.objects.all().", text, 0, len(text)
        )
    lead = len(text) - len(stripped)
    tree, positions = syntax_tree(text, lead)
    check_syntax(tree, text, positions)
    builder = Builder(text, positions, Names(app))
    with no_queries():
        return builder.expression(tree.body)
