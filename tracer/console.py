"""Recorded statements in a terminal, as they finish (``TRACER["LOG"]``).

Like Django's ``django.db.backends`` logger (``CursorDebugWrapper``), with the
pipeline: each statement the recorder records is sent, when it returns or raises, to
the logger ``tracer.statements`` at DEBUG. The record carries the statement
(``record.tracer_statement``); its message is the plain text of ``statement_text``,
built only when a handler formats it. ``ConsoleHandler`` writes that text,
with the SQL highlighted by pygments when its stream is a terminal.

With ``LOG`` on and no handler of its own on ``tracer.statements`` (from ``LOGGING``),
the tracer gives it a ``ConsoleHandler`` on stderr, so that ``LOG: True`` alone prints.

What a line shows is what is known when the statement returns: the time each stage
took up to then (building the QuerySet, compiling, executing). Fetching the rows and
building model instances come after; the tracer's pages show them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from tracer.trace import Statement

#: The logger every statement goes to when ``TRACER["LOG"]`` is on.
LOGGER = logging.getLogger("tracer.statements")

#: Characters of SQL shown at most (IN lists and VALUES rows are shortened first).
SQL_LIMIT = 2000
INDENT = "  "


def emit(statement: Statement) -> None:
    """Log a statement that returned or raised (see ``TRACER["LOG"]``)."""
    if LOGGER.isEnabledFor(logging.DEBUG):
        LOGGER.debug("%s", Text(statement), extra={"tracer_statement": statement})


class Text:
    """A statement's text, formatted when a handler asks (``str()``)."""

    __slots__ = ("statement",)

    def __init__(self, statement: Statement) -> None:
        self.statement = statement

    def __str__(self) -> str:
        return statement_text(self.statement)


def statement_text(statement: Statement, *, color: bool = False) -> str:
    """Three lines: time, alias and call site; the stages it went through with the
    time each took; the SQL with its params written in (secrets masked).

        (0.421 ms) default  app/views.py:12
          model testapp.Book > manager objects > queryset ... 0.030 ms > ...
          SELECT ... WHERE "testapp_book"."price" < 10 LIMIT 5
    """
    from tracer.export import stages

    head = f"({_ms(statement.duration_ns)}) {statement.alias}  {call_site(statement)}"
    if statement.error is not None:
        head += f"  failed: {statement.error[0]}: {statement.error[1]}"
    sql = sql_text(statement, color=color)
    return "\n".join([head, INDENT + stages_text(stages(statement)), *_indented(sql)])


def call_site(statement: Statement) -> str:
    """``file:line`` of the first frame in the user's code (paths under the current
    directory relative to it), or ``(library code)`` when every frame was a library's."""
    from tracer import stacks

    operation = statement.operation
    frame = stacks.location(statement.stack if operation is None else operation.stack)
    if frame is None:
        return "(library code)"
    return f"{stacks.short_path(frame.filename)}:{frame.lineno}"


def stages_text(stages: dict[str, dict[str, Any] | None]) -> str:
    """The stages a statement went through, ``>`` between them, each with its time."""
    parts = []
    model = stages["model"]
    if model is not None:
        parts.append(f"model {model['label']}")
    manager = stages["manager"]
    if manager is not None:
        parts.append(f"manager {manager['name']}")
    queryset = stages["queryset"]
    if queryset is not None:
        parts.append(
            f"queryset {queryset['code']} [{queryset['trigger']}] {_ms_text(queryset['build_ms'])}"
        )
    query = stages["query"]
    if query is not None:
        parts.append(f"query {query['class']}")
    compiler = stages["compiler"]
    if compiler is not None:
        name = str(compiler["class"]).rsplit(".", 1)[-1]
        parts.append(f"compiler {name} {_ms_text(compiler['compile_ms'])}")
    backend = stages["backend"]
    if backend is not None:
        parts.append(f"backend {backend['vendor']} {_ms_text(backend['execute_ms'])}")
    return " > ".join(parts)


def sql_text(statement: Statement, *, color: bool = False) -> str:
    """The SQL on its own lines as it went to the database, params written in and
    secrets masked (``tracer.sqldisplay.interpolate``), shortened past SQL_LIMIT."""
    from tracer.export import redacted
    from tracer.sqldisplay import collapse, interpolate, redact_literals, terminal_highlight

    sql = statement.sql
    if not isinstance(sql, str):
        return repr(sql)
    vendor = statement.vendor
    params = statement.params
    if statement.kind == "executemany":
        rows = len(params) if isinstance(params, (list, tuple)) else None
        text = redact_literals(sql, vendor=vendor)
        text += f"\n-- executemany: {'?' if rows is None else rows} rows of params"
    elif statement.kind == "callproc":
        text = f"CALL {sql}; params={redacted(statement)!r}"
    else:
        text = interpolate(sql, params, vendor)
    text = collapse(text, limit=SQL_LIMIT)
    if color:
        text = terminal_highlight(text, vendor)
    return text


def _indented(text: str) -> list[str]:
    return [INDENT + line for line in text.split("\n")]


def _ms(ns: int | None) -> str:
    return "? ms" if ns is None else f"{ns / 1e6:.3f} ms"


def _ms_text(ms: float | None) -> str:
    return "? ms" if ms is None else f"{ms:.3f} ms"


class ConsoleHandler(logging.StreamHandler):
    """Writes statements as ``statement_text`` gives them, the SQL highlighted when
    the stream is a terminal (``color`` says otherwise when given); other records as
    a StreamHandler does. A failure to format counts as a recorder failure
    (``tracer.recorder.failures()``); it never reaches the query that was logged."""

    def __init__(self, stream: Any = None, color: bool | None = None) -> None:
        super().__init__(stream)
        self.color = color
        # Without a stream of its own: sys.stderr as it is when writing (test runners
        # and capturing tools replace it).
        self._stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._stderr:
            self.stream = sys.stderr
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        statement = getattr(record, "tracer_statement", None)
        if statement is None:
            return super().format(record)
        color = self.color
        if color is None:
            isatty = getattr(self.stream, "isatty", None)
            color = bool(isatty and isatty())
        return statement_text(statement, color=color)

    def handleError(self, record: logging.LogRecord) -> None:
        from tracer import recorder

        recorder.note_failure()


#: The handler ``configure`` added (None: not added, or LOGGING set one).
_added: ConsoleHandler | None = None


def configure(on: bool) -> None:
    """Make ``tracer.statements`` print to stderr when ``LOG`` is on and LOGGING gave
    it no handler; take that handler off again when ``LOG`` is off."""
    global _added
    if on and _added is None and not LOGGER.handlers:
        _added = ConsoleHandler()
        LOGGER.addHandler(_added)
        LOGGER.setLevel(logging.DEBUG)
        LOGGER.propagate = False
    elif not on and _added is not None:
        LOGGER.removeHandler(_added)
        LOGGER.setLevel(logging.NOTSET)
        LOGGER.propagate = True
        _added = None
