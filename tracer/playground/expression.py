"""What the parser makes of an expression (``Expression``, ``MethodCall``), and what it
says when it refuses one (``PlaygroundError``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

__all__ = ["POINTER_WIDTH", "Expression", "MethodCall", "PlaygroundError"]

#: Characters of the text shown around a fault by ``PlaygroundError.pointer()``.
POINTER_WIDTH = 100


class PlaygroundError(ValueError):
    """The expression is refused (or Django rejected it): ``message`` says why, and
    ``start``/``end`` are the character offsets in ``text`` of the part at fault."""

    def __init__(self, message: str, text: str, start: int, end: int) -> None:
        super().__init__(message)
        self.message = message
        self.text = text
        self.start = max(0, min(start, len(text)))
        self.end = max(self.start, min(end, len(text)))

    def pointer(self) -> str:
        """The line of the text holding the fault, and a caret line under the fault
        (``^`` under each of its characters on that line)."""
        text = self.text
        line_start = text.rfind("\n", 0, self.start) + 1
        line_end = text.find("\n", self.start)
        if line_end < 0:
            line_end = len(text)
        # A window of at most POINTER_WIDTH characters of that line around the fault.
        first = max(line_start, self.start - POINTER_WIDTH // 3)
        last = min(line_end, first + POINTER_WIDTH)
        line = text[first:last]
        head = "..." if first > line_start else ""
        tail = "..." if last < line_end else ""
        before = head + text[first : self.start]
        # Keep tabs so that the carets line up under tabbed text.
        pad = "".join(char if char == "\t" else " " for char in before)
        width = max(1, min(self.end, last) - self.start)
        return f"{head}{line}{tail}\n{pad}{'^' * width}"

    @property
    def line(self) -> int:
        """The line of the fault's start (1-based)."""
        return self.text.count("\n", 0, self.start) + 1

    @property
    def column(self) -> int:
        """The column of the fault's start on its line (0-based, in characters)."""
        return self.start - (self.text.rfind("\n", 0, self.start) + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "start": self.start,
            "end": self.end,
            "line": self.line,
            "column": self.column,
        }


@dataclass(frozen=True)
class MethodCall:
    """One call of the chain, as written: ``.filter(price__lt=10)``, ``[:10]``,
    ``| Book.objects.filter(...)``."""

    #: The QuerySet method: ``filter``, ``__getitem__`` (slice or index), ``__or__``.
    method: str
    #: ``"chain"`` (returns a QuerySet), ``"evaluate"`` (runs a query) or
    #: ``"write"`` (changes data): see tracer.playground.allowed.
    kind: str
    #: The call as code, arguments as typed: ``.filter(price__lt=10)`` (the values of
    #: keywords with secret-looking names masked: ``password='********'``).
    code: str
    #: Character offsets of the call in the expression's text.
    start: int
    end: int
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: The source text of each positional argument, and of each keyword's value.
    arg_sources: tuple[str, ...] = ()
    kwarg_sources: tuple[tuple[str, str], ...] = ()
    #: The QuerySet after this call (None for an evaluating or writing call, which
    #: is not made).
    queryset: Any = None
    #: How long the call took to build its QuerySet.
    duration_ns: int = 0


@dataclass(frozen=True)
class Expression:
    """A parsed expression: the manager it starts from, its chained calls with the
    QuerySet after each, and the evaluating or writing call that ends it, if any."""

    text: str
    model: type[Model]
    #: The manager's attribute name on the model (``objects``) and the manager.
    manager_name: str
    manager: Any
    #: ``Book.objects`` as typed, and its offsets.
    root_code: str
    root_start: int
    root_end: int
    #: The manager's QuerySet (``manager.get_queryset()``).
    base: Any
    calls: tuple[MethodCall, ...]
    terminal: MethodCall | None

    @property
    def queryset(self) -> Any:
        """The QuerySet the chained calls built (before any terminal call)."""
        return self.calls[-1].queryset if self.calls else self.base

    @property
    def code(self) -> str:
        """The expression as code, laid out on one line."""
        parts = [self.root_code, *(call.code for call in self.calls)]
        if self.terminal is not None:
            parts.append(self.terminal.code)
        return "".join(parts)
