"""EXPLAIN a recorded statement, on demand.

Only a statement already recorded, looked up by trace id and index (a client never
sends SQL), and only a single SELECT: anything that could write is refused before
anything runs. The EXPLAIN runs on the statement's own alias, with recording
suspended, inside a transaction (or savepoint) that is always rolled back; on
PostgreSQL that transaction is also made read-only, so a SELECT that calls a
function that writes, or advances a sequence, fails instead of doing it.

Per vendor:

- SQLite: ``EXPLAIN QUERY PLAN``.
- PostgreSQL: ``EXPLAIN (FORMAT JSON)``; with ``analyze=True``,
  ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)``, which runs the SELECT (never one that
  locks rows: ``FOR UPDATE``/``FOR SHARE``).
- MySQL and MariaDB: ``EXPLAIN FORMAT=JSON``. Even a plain EXPLAIN can run part of
  the statement there (MariaDB fills a one-row derived table while optimizing, and
  calls the functions in it): the rollback undoes their writes to transactional
  tables, not their other effects (user variables, non-transactional tables). No
  ANALYZE: it runs the whole statement, and neither server can make a transaction
  read-only once it has started.

A trace's plans show the statement's params wherever the server inlines them
(PostgreSQL's conditions, MySQL's ``attached_condition``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.db import connections, transaction

from tracer import recorder
from tracer.analysis.plans import (
    Plan,
    PlanNode,
    load_document,
    mysql_plan,
    postgresql_plan,
    sqlite_plan,
)
from tracer.store import ParamsUnavailable, get_store
from tracer.trace import Statement

__all__ = [
    "ExplainError",
    "NotExplainable",
    "Plan",
    "PlanNode",
    "UnknownStatement",
    "UnknownTrace",
    "explain",
    "explain_statement",
]


class ExplainError(ValueError):
    """The statement cannot be explained; the message says why. Nothing was run."""


class UnknownTrace(ExplainError):
    """No trace with that id in the store (never there, or evicted since)."""


class UnknownStatement(ExplainError):
    """The trace has no statement at that index."""


class NotExplainable(ExplainError):
    """The statement is not one that may be explained (not a single SELECT, its
    params were not kept, an unsupported vendor or option...)."""


VENDORS = ("sqlite", "postgresql", "mysql")
#: (vendor, analyze) -> what is put before the statement's SQL.
COMMANDS = {
    ("sqlite", False): "EXPLAIN QUERY PLAN",
    ("postgresql", False): "EXPLAIN (FORMAT JSON)",
    ("postgresql", True): "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)",
    ("mysql", False): "EXPLAIN FORMAT=JSON",
}
PARSERS: dict[str, Callable[[Any], PlanNode]] = {
    "sqlite": sqlite_plan,
    "postgresql": postgresql_plan,
    "mysql": mysql_plan,
}
# Why a statement of another kind than "execute" is not explained.
_KINDS = {
    "executemany": "An executemany() ran its SQL once per set of params; it is not explained.",
    "callproc": "A stored procedure call (callproc) is not explained.",
    "transaction": "A transaction statement is not explained.",
}


def explain(trace_id: str, index: int, *, analyze: bool = False) -> Plan:
    """The plan of statement ``index`` of the stored trace ``trace_id``.

    Raises an ExplainError (a ValueError) when it cannot be explained; errors the
    database raises while explaining (django.db.DatabaseError) are left as they are.
    """
    store = get_store()
    trace = store.get(trace_id)
    if trace is None:
        raise UnknownTrace(f"No trace {trace_id!r} in the store: unknown, or evicted since.")
    count = len(trace.statements)
    if not 0 <= index < count:
        raise UnknownStatement(
            f"Trace {trace_id!r} has {count} statement(s); there is none at index {index} "
            f"(statement #{index + 1} as the pages number them)."
        )
    statement = trace.statements[index]
    if trace.imported:
        # Loaded from JSON (an export, or the file store): its params are renderings.
        # The store may have kept the real ones (the file store does, for SELECTs).
        _command(statement, analyze)  # refuse what would be refused anyway, first
        try:
            params = store.raw_params(trace_id, index)
        except ParamsUnavailable as exc:
            raise NotExplainable(str(exc)) from None
        statement = Statement(
            statement.alias,
            statement.vendor,
            statement.kind,
            statement.sql,
            params,
            statement.in_atomic_block,
        )
    return explain_statement(statement, analyze=analyze)


def explain_statement(statement: Statement, *, analyze: bool = False) -> Plan:
    """The plan of a recorded statement (see the module's docstring for what runs)."""
    command = _command(statement, analyze)
    alias, vendor = statement.alias, statement.vendor
    connection = connections[alias]
    with recorder.suspended(), transaction.atomic(using=alias):
        try:
            with connection.cursor() as cursor:
                if vendor == "postgresql":
                    # Allowed in a savepoint too, and undone with it.
                    cursor.execute("SET TRANSACTION READ ONLY")
                cursor.execute(f"{command} {statement.sql}", statement.params)
                rows = cursor.fetchall()
        finally:
            # Set last: a transaction marked for rollback runs no more queries.
            transaction.set_rollback(True, using=alias)
    # SQLite answers with rows, the others with one JSON document.
    raw = [list(row) for row in rows] if vendor == "sqlite" else load_document(rows[0][0])
    return Plan(vendor, statement.sql, command, analyze, PARSERS[vendor](raw), raw)


def _command(statement: Statement, analyze: bool) -> str:
    """The EXPLAIN command for this statement, or NotExplainable saying why not."""
    vendor = statement.vendor
    if statement.kind != "execute":
        raise NotExplainable(_KINDS.get(statement.kind, f"A {statement.kind} is not explained."))
    if not isinstance(statement.sql, str):
        raise NotExplainable(f"Its SQL is a {type(statement.sql).__name__}, not text.")
    if isinstance(statement.params, str):  # recorder.DROPPED, trace.UNRECORDED
        raise NotExplainable(f"Its params were not kept ({statement.params}).")
    if vendor not in VENDORS:
        raise NotExplainable(f"EXPLAIN is not supported on {vendor}.")
    command = COMMANDS.get((vendor, analyze))
    if command is None:
        raise NotExplainable(
            f"EXPLAIN ANALYZE is offered on PostgreSQL only, not on {vendor}: it runs "
            "the statement (see tracer.analysis.explain)."
        )
    if statement.alias not in connections.settings:
        raise NotExplainable(f"There is no database alias {statement.alias!r} now.")
    if connections[statement.alias].vendor != vendor:
        raise NotExplainable(
            f"The alias {statement.alias!r} is now {connections[statement.alias].vendor}, "
            f"not {vendor}."
        )
    problem = select_problem(statement.sql, vendor, locking_allowed=not analyze)
    if problem is not None:
        raise NotExplainable(problem)
    return command


# SQL text ----------------------------------------------------------------------------

# Backslashes escape quotes in MySQL strings (and PostgreSQL's E'...'), not in
# standard SQL, and either server can be set the other way: the text is read both
# ways, and refused if either reading finds a problem.
_STRINGS = r"""| '(?:[^']|'')*' | "(?:[^"]|"")*" """
_ESCAPED_STRINGS = r"""| '(?:[^'\\]|''|\\.)*' | "(?:[^"\\]|""|\\.)*" """


def _literals(vendor: str) -> list[re.Pattern[str]]:
    """Comments, string literals and quoted identifiers: text that holds no keyword.

    MySQL's executable comments (``/*! ... */``) are not comments: the server runs
    their text. Its ``--`` comments need a space after them, and ``#`` starts one.
    """
    line = r"--(?=\s|$)[^\n]* | \#[^\n]*" if vendor == "mysql" else r"--[^\n]*"
    # PostgreSQL's dollar quoting: $$text$$, $tag$text$tag$.
    dollars = r"| \$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$" if vendor == "postgresql" else ""
    common = rf"{line} | /\*(?!!).*?\*/ | `(?:[^`]|``)*` {dollars}"
    return [re.compile(common + strings, re.S | re.X) for strings in (_STRINGS, _ESCAPED_STRINGS)]


_LITERALS = {vendor: _literals(vendor) for vendor in VENDORS}
_WORD = re.compile(r"[A-Za-z_][\w$]*")
# The first word, after opening parentheses: "(SELECT ...) UNION (SELECT ...)".
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z_]\w*)")
#: Keywords that write, anywhere in the statement (outside literals and comments).
WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE", "INTO")


def select_problem(sql: str, vendor: str, *, locking_allowed: bool = True) -> str | None:
    """Why ``sql`` is not a single SELECT that can be explained safely, or None.

    It must start with SELECT or WITH (after comments and opening parentheses), be
    one statement, and contain no INSERT, UPDATE (other than ``FOR [NO KEY]
    UPDATE``), DELETE, MERGE or INTO: a WITH can wrap a write in PostgreSQL, and
    ``SELECT ... INTO`` creates a table (PostgreSQL) or writes a file (MySQL).
    Without ``locking_allowed``, a SELECT that locks rows is refused too.
    """
    for literals in _LITERALS.get(vendor, _LITERALS["sqlite"]):
        nested = False

        def blank(match: re.Match[str]) -> str:
            nonlocal nested
            text = match.group()
            # PostgreSQL nests /* */ comments; reading them as flat could hide code.
            nested = nested or (text.startswith("/*") and "/*" in text[2:])
            return " "

        code = literals.sub(blank, sql)
        if nested:
            return "A statement with nested comments is not explained."
        problem = _code_problem(code, locking_allowed)
        if problem is not None:
            return problem
    return None


def _code_problem(code: str, locking_allowed: bool) -> str | None:
    if ";" in re.sub(r"[\s;]+$", "", code):
        return "Only a single statement is explained; this is several."
    first = _FIRST_WORD.match(code)
    if first is None or first.group(1).upper() not in ("SELECT", "WITH"):
        return f"Only a SELECT is explained, not {first.group(1) if first else 'this'}."
    words = [word.upper() for word in _WORD.findall(code)]
    for position, word in enumerate(words):
        if word == "UPDATE" and (
            words[position - 1 : position] == ["FOR"]
            or words[max(0, position - 3) : position] == ["FOR", "NO", "KEY"]
        ):
            continue  # a locking read, not a write
        if word in WRITES:
            return f"A statement containing {word} is never re-run."
    if not locking_allowed and _locks(words):
        return "A SELECT that locks rows (FOR UPDATE, FOR SHARE) is not run with ANALYZE."
    return None


_LOCKING = (
    ["FOR", "UPDATE"],
    ["FOR", "NO", "KEY", "UPDATE"],
    ["FOR", "SHARE"],
    ["FOR", "KEY", "SHARE"],
    ["LOCK", "IN", "SHARE", "MODE"],
)


def _locks(words: list[str]) -> bool:
    return any(
        words[position : position + len(phrase)] == phrase
        for position in range(len(words))
        for phrase in _LOCKING
    )
