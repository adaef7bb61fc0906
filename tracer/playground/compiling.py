"""Compiling without running: a Query's SQL as its compiler writes it, the
statements a QuerySet method would send, and how the playground shows them.

Everything here runs inside ``guard.no_queries``: a statement about to be sent is
stopped before the driver sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections

from tracer import recorder
from tracer.export import value
from tracer.querystate import describe
from tracer.sqldisplay import MASK, redact_literals, redacted_params
from tracer.trace import Compile

__all__ = [
    "Compiled",
    "Unknown",
    "as_in_transaction",
    "class_path",
    "compile_inserts",
    "compile_query",
    "from_attempt",
    "shown",
]


class Unknown:
    """A value the statement would only get from the statements run before it (the
    primary keys a SELECT returned): shown in place of a param."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


@dataclass
class Compiled:
    """One statement, compiled and not run."""

    #: What the statement is for: ``"rows"``, ``"count()"``, ``"delete"``...
    purpose: str
    #: The SQL and params as the compiler wrote them (params made JSON-safe, the
    #: values of secret-looking columns masked); None when there is no statement.
    sql: str | None = None
    params: Any = None
    #: The engine's compiler class (dotted path) and the Query class name.
    compiler: str | None = None
    query: str | None = None
    #: ``tracer.querystate.describe()`` of the Query, after compiling.
    state: dict[str, Any] | None = None
    #: When it runs, or why there is no SQL.
    note: str | None = None
    #: The raw params (not exported): for interpolating in a terminal.
    raw_params: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "sql": self.sql,
            "params": self.params,
            "compiler": self.compiler,
            "query": self.query,
            "state": self.state,
            "note": self.note,
        }


def class_path(cls: type) -> str:
    # A traced compiler class stands for the engine's own (as in the export).
    real = getattr(cls, "_tracer_real", cls)
    return f"{real.__module__}.{real.__qualname__}"


def shown(sql: Any, params: Any, vendor: str) -> tuple[Any, Any]:
    """SQL and params as every display and export shows them: literals and params of
    secret-looking columns masked, params JSON-safe."""
    if not isinstance(sql, str):
        return sql, value(params)
    try:
        sql = redact_literals(sql, vendor=vendor)
        if params is not None and not isinstance(params, str):
            params = redacted_params(sql, params, vendor=vendor)
    except Exception:  # never show a value that could not be checked
        params = [MASK] * len(params) if isinstance(params, (list, tuple)) else MASK
    return sql, value(params)


def compile_query(query: Any, using: str, purpose: str, note: str | None = None) -> Compiled:
    """Compile ``query`` (left unchanged: a clone is compiled) for ``using``.

    Raises what the compiler raises, except EmptyResultSet: a query Django knows
    matches nothing has no statement, and says so.
    """
    query = query.clone()
    connection = connections[using]
    with as_in_transaction(connection, bool(getattr(query, "select_for_update", False))):
        compiler = query.get_compiler(using)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return Compiled(
                purpose,
                compiler=class_path(type(compiler)),
                query=type(query).__name__,
                state=describe(query),
                note="Django knows it matches nothing (EmptyResultSet): no statement is sent.",
            )
    shown_sql, shown_params = shown(sql, params, connection.vendor)
    return Compiled(
        purpose,
        shown_sql,
        shown_params,
        class_path(type(compiler)),
        type(query).__name__,
        describe(query),
        note,
        params,
    )


def compile_inserts(query: Any, using: str, returning: Any, purpose: str) -> list[Compiled]:
    """An InsertQuery's statements (one, or one per object where the engine has no
    multi-row INSERT), with the RETURNING columns ``execute_sql(returning)`` asks for."""
    connection = connections[using]
    compiler = query.get_compiler(using=using)
    compiler.returning_fields = returning
    statements = compiler.as_sql()
    state = describe(query)
    result = []
    for sql, params in statements:
        shown_sql, shown_params = shown(sql, params, connection.vendor)
        result.append(
            Compiled(
                purpose,
                shown_sql,
                shown_params,
                class_path(type(compiler)),
                type(query).__name__,
                state,
                None,
                params,
            )
        )
    return result


def from_attempt(attempt: Any, using: str, purpose: str, note: str | None = None) -> Compiled:
    """The statement Django was stopped before sending (guard.first_statement)."""
    vendor = connections[using].vendor
    shown_sql, shown_params = shown(attempt.sql, attempt.params, vendor)
    compile: Compile | None = attempt.compile
    shape = compile.shape if compile is not None else None
    return Compiled(
        purpose,
        shown_sql,
        shown_params,
        class_path(shape.compiler_class) if shape is not None else None,
        shape.query_class.__name__ if shape is not None else None,
        shape.state if shape is not None else None,
        note,
        attempt.params,
    )


@contextmanager
def as_in_transaction(connection: Any, needed: bool) -> Iterator[None]:
    """``select_for_update()`` compiles only inside a transaction (the compiler checks
    autocommit): compile as if in one, without starting one (that would send
    statements). Running the expression does run it inside a transaction."""
    if not needed:
        yield
        return
    with recorder.suspended():
        connection.ensure_connection()
    saved = connection.autocommit
    connection.autocommit = False
    try:
        yield
    finally:
        connection.autocommit = saved
