"""tracer.console: each recorded statement logged as it finishes (``TRACER["LOG"]``)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.test import Client, override_settings
from pygments import highlight
from pygments.formatters import TerminalFormatter
from pygments.lexers import MySqlLexer, SqlLexer

import tracer
from tests.testapp.models import Author, Book
from tracer import console, recorder
from tracer.console import LOGGER, ConsoleHandler, statement_text
from tracer.trace import Call, Statement

HERE = os.path.relpath(__file__)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    """What goes to ``tracer.statements`` (a handler of its own: the tracer adds none)."""
    handler = Records()
    LOGGER.addHandler(handler)
    level = LOGGER.level
    LOGGER.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)


def line() -> int:
    """The line after the caller's."""
    return sys._getframe(1).f_lineno + 1


def fixed(statement: Statement) -> Statement:
    """The statement with fixed times: built 0.030 ms, compiled 0.120 ms, executed
    0.421 ms."""
    statement.duration_ns = 421_000
    if statement.compile is not None:
        statement.compile.compile_ns = 120_000
    if statement.operation is not None:
        call: Any = statement.operation.lineage
        calls = []
        while isinstance(call, Call):
            calls.append(call)
            call = call.parent
        for each in calls:
            each.duration_ns = 30_000 // len(calls)
    return statement


def quoted(vendor: str, name: str) -> str:
    return f"`{name}`" if vendor == "mysql" else f'"{name}"'


@pytest.mark.django_db(databases=["default", "postgresql", "mysql"])
def test_an_orm_statement(alias: str, vendor: str):
    with tracer.capture() as trace:
        where = line()
        list(Book.objects.using(alias).filter(price__lt=10, title="Dune")[:5])

    (statement,) = trace.statements
    q = lambda name: quoted(vendor, name)  # noqa: E731
    book = q("testapp_book")
    assert statement_text(fixed(statement)) == (
        f"(0.421 ms) {alias}  {HERE}:{where}\n"
        "  model testapp.Book > manager objects > queryset "
        "Book.objects.using(" + repr(alias) + ").filter(price__lt=10, title='Dune')[:5] "
        "[iteration] 0.030 ms > query Query > compiler SQLCompiler 0.120 ms > "
        f"backend {vendor} 0.421 ms\n"
        f"  SELECT {book}.{q('id')}, {book}.{q('title')}, {book}.{q('author_id')}, "
        f"{book}.{q('price')} FROM {book} WHERE ({book}.{q('price')} < 10 AND "
        f"{book}.{q('title')} = 'Dune') LIMIT 5"
    )


@pytest.mark.django_db(databases=["default", "postgresql", "mysql"])
def test_raw_sql_with_a_secret_and_a_failure(connection: Any, vendor: str):
    with tracer.capture() as trace, connection.cursor() as cursor:
        first = line()
        cursor.execute(
            "SELECT %s AS name FROM (SELECT 'x' AS password) AS t WHERE t.password = %s",
            ["Ann", "hunter2"],
        )
        with pytest.raises(Exception) as info:
            second = line()
            cursor.execute("SELECT * FROM no_such_table")

    ok, failed = (fixed(statement) for statement in trace.statements)
    assert statement_text(ok) == (
        f"(0.421 ms) {connection.alias}  {HERE}:{first}\n"
        f"  backend {vendor} 0.421 ms\n"
        "  SELECT 'Ann' AS name FROM (SELECT 'x' AS password) AS t "
        "WHERE t.password = '********'"
    )
    error = type(info.value)
    assert statement_text(failed) == (
        f"(0.421 ms) {connection.alias}  {HERE}:{second}  failed: "
        f"{error.__module__}.{error.__qualname__}: {info.value}\n"
        f"  backend {vendor} 0.421 ms\n"
        "  SELECT * FROM no_such_table"
    )


@pytest.mark.django_db(databases=["default", "postgresql", "mysql"])
def test_color_highlights_the_sql_only(connection: Any, vendor: str):
    with tracer.capture() as trace, connection.cursor() as cursor:
        where = line()
        cursor.execute("SELECT 1")

    (statement,) = trace.statements
    lexer = MySqlLexer() if vendor == "mysql" else SqlLexer()
    colored = highlight("SELECT 1", lexer, TerminalFormatter()).rstrip("\n")
    assert "\x1b[" in colored
    assert statement_text(fixed(statement), color=True) == (
        f"(0.421 ms) {connection.alias}  {HERE}:{where}\n  backend {vendor} 0.421 ms\n  {colored}"
    )


def test_what_the_sql_line_shows_of_other_kinds():
    many = Statement(
        "default", "sqlite", "executemany", "INSERT INTO t VALUES (%s)", [[1], [2]], False
    )
    many.duration_ns = 1_000
    assert statement_text(many) == (
        "(0.001 ms) default  (library code)\n"
        "  backend sqlite 0.001 ms\n"
        "  INSERT INTO t VALUES (%s)\n"
        "  -- executemany: 2 rows of params"
    )
    word = Statement("default", "sqlite", "transaction", "COMMIT", None, True)
    assert (
        statement_text(word) == "(? ms) default  (library code)\n  backend sqlite ? ms\n  COMMIT"
    )
    huge = Statement("default", "sqlite", "execute", "SELECT '" + "x" * 3000 + "'", None, False)
    assert statement_text(huge).split("\n")[2:] == [
        "  SELECT '" + "x" * (console.SQL_LIMIT - 8) + "'",
        "  /* ... truncated: 1,009 more characters */",
    ]


@pytest.mark.django_db
@override_settings(TRACER={"LOG": True})
def test_logged_inside_capture(records: Records):
    with tracer.capture():
        Author.objects.filter(name="Ann").count()
        where = line()
        list(Author.objects.raw("SELECT id, name FROM testapp_author WHERE name = %s", ["Bo"]))

    assert [record.levelno for record in records.records] == [logging.DEBUG] * 2
    count, raw = (fixed(record.tracer_statement) for record in records.records)  # type: ignore[attr-defined]
    assert count.sql.startswith("SELECT COUNT(*)")
    # The message is formatted when a handler asks: the fixed times show.
    assert records.records[0].getMessage() == statement_text(count)
    assert records.records[1].getMessage() == (
        f"(0.421 ms) default  {HERE}:{where}\n"
        "  model testapp.Author > manager objects > queryset "
        "Author.objects.raw('SELECT id, name FROM testapp_author WHERE name = %s', ['Bo']) "
        "[iteration] 0.030 ms > query RawQuery > backend sqlite 0.421 ms\n"
        "  SELECT id, name FROM testapp_author WHERE name = 'Bo'"
    )


@pytest.mark.django_db
@override_settings(TRACER={"LOG": True, "CAPTURE": "always"})
def test_logged_under_always(records: Records):
    Author.objects.filter(name="Ann").exists()

    (record,) = records.records
    assert record.tracer_statement.sql == (  # type: ignore[attr-defined]
        'SELECT %s AS "a" FROM "testapp_author" WHERE "testapp_author"."name" = %s LIMIT 1'
    )


@pytest.mark.django_db
@override_settings(TRACER={"LOG": True}, MIDDLEWARE=["tracer.middleware.TracerMiddleware"])
def test_logged_under_the_middleware(records: Records, client: Client):
    client.get("/authors/")

    (record,) = records.records
    assert record.tracer_statement.sql == 'SELECT COUNT(*) AS "__count" FROM "testapp_author"'  # type: ignore[attr-defined]


@pytest.mark.django_db
@override_settings(TRACER={"LOG": True})
def test_the_tracers_own_statements_are_not_logged(records: Records):
    with tracer.capture(), recorder.suspended():
        Author.objects.count()
    assert records.records == []


@pytest.mark.django_db
def test_off_by_default_emits_nothing(records: Records):
    with tracer.capture() as trace:
        Author.objects.count()
    assert len(trace.statements) == 1
    assert recorder.log_statements is False
    assert records.records == []
    assert LOGGER.handlers == [records]


@pytest.mark.django_db
def test_a_handler_prints_to_stderr_when_logging_set_none(capsys: pytest.CaptureFixture[str]):
    assert LOGGER.handlers == []
    with override_settings(TRACER={"LOG": True}):
        with tracer.capture() as trace:
            Author.objects.count()
        (handler,) = LOGGER.handlers
        assert type(handler) is ConsoleHandler
        assert (LOGGER.level, LOGGER.propagate) == (logging.DEBUG, False)
    (statement,) = trace.statements
    assert capsys.readouterr().err == statement_text(statement) + "\n"

    with tracer.capture():  # LOG off again: the handler goes
        Author.objects.count()
    assert (LOGGER.handlers, LOGGER.level, LOGGER.propagate) == ([], logging.NOTSET, True)
    assert capsys.readouterr().err == ""


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
@override_settings(TRACER={"LOG": True})
def test_the_handler_colors_on_a_terminal_only():
    plain, terminal, forced = StringIO(), Terminal(), StringIO()
    handlers = [
        ConsoleHandler(plain),
        ConsoleHandler(terminal),
        ConsoleHandler(forced, color=True),
    ]
    for handler in handlers:
        LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)
    try:
        with tracer.capture() as trace:
            Author.objects.count()
        LOGGER.info("not a statement: %s", 42)
    finally:
        for handler in handlers:
            LOGGER.removeHandler(handler)
        LOGGER.setLevel(logging.NOTSET)

    (statement,) = trace.statements
    assert plain.getvalue() == statement_text(statement) + "\nnot a statement: 42\n"
    colored = statement_text(statement, color=True) + "\nnot a statement: 42\n"
    assert colored != plain.getvalue()
    assert terminal.getvalue() == forced.getvalue() == colored


@pytest.mark.django_db
@override_settings(TRACER={"LOG": True})
def test_a_formatter_bug_does_not_break_the_query(monkeypatch: pytest.MonkeyPatch):
    stream = StringIO()
    handler = ConsoleHandler(stream)
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False  # the test runner's own handlers would fail as well

    def broken(statement: Statement, *, color: bool = False) -> str:
        raise ValueError("formatter bug")

    monkeypatch.setattr(console, "statement_text", broken)
    before = recorder.failures()
    try:
        with tracer.capture() as trace:
            Author.objects.create(name="Ann")
            count = Author.objects.filter(name="Ann").count()
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(logging.NOTSET)
        LOGGER.propagate = True

    assert count == 1
    assert len(trace.statements) == 2
    assert recorder.failures() == before + 2
    assert stream.getvalue() == ""


class Refusing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        raise RuntimeError("a broken filter")


@pytest.mark.django_db
@override_settings(TRACER={"LOG": True})
def test_a_broken_logging_setup_does_not_break_the_query(records: Records):
    refusing = Refusing()
    LOGGER.addFilter(refusing)
    before = recorder.failures()
    try:
        with tracer.capture() as trace:
            names = list(Author.objects.values_list("name", flat=True))
    finally:
        LOGGER.removeFilter(refusing)
    assert names == []
    assert len(trace.statements) == 1
    assert recorder.failures() == before + 1
    assert records.records == []
