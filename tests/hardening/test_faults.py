"""Faults: the driver raising in execute and mid-fetch, a connection dropped and
reconnected, a bug inside the recorder.

Each fault runs on a traced alias and on its plain twin (the same engine and database
without the tracer). The user's code must see the same thing on both: the same rows,
or the same exception (class, message and the driver's exception under it), and the
connection must be left in the same state (``in_atomic_block``, ``needs_rollback``,
``errors_occurred``). The trace keeps what it recorded before the fault, and goes on
recording after it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction
from django.db.models.expressions import RawSQL
from django.test import override_settings

import tracer
from tests.testapp.models import Author, Book
from tracer import recorder
from tracer.trace import Trace

pytestmark = pytest.mark.django_db(databases="__all__")

#: A fault: runs on an alias, appends what it read to a list, returns a value or raises.
Fault = Callable[[str, list[Any]], Any]


def state(alias: str) -> tuple[bool, bool, bool]:
    connection = connections[alias]
    return connection.in_atomic_block, connection.needs_rollback, connection.errors_occurred


def attempt(alias: str, fault: Fault) -> tuple[Any, ...]:
    """Run ``fault`` inside an atomic block, as user code that catches the error would:
    (what it returned or raised, the rows it read first, the connection's state inside
    the block after the fault, and after the block)."""
    connection = connections[alias]
    connection.ensure_connection()
    connection.errors_occurred = False  # earlier tests' faults, on either twin
    seen: list[Any] = []
    with transaction.atomic(using=alias):
        try:
            outcome: tuple[Any, ...] = ("returned", fault(alias, seen))
        except Exception as exc:
            outcome = ("raised", type(exc), str(exc), type(exc.__cause__))
        inside = state(alias)
        # Undo the block's work (and, on PostgreSQL, leave its aborted transaction).
        transaction.set_rollback(True, using=alias)
    return outcome, seen, inside, state(alias)


def select(alias: str, value: Any) -> list[Any]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT %s", [value])
        return [tuple(row) for row in cursor.fetchall()]


def traced_and_plain(alias: str, plain_alias: str, fault: Fault) -> tuple[tuple[Any, ...], Trace]:
    """``attempt`` on both twins, which must agree, between two recorded selects."""
    with tracer.capture() as trace:
        assert select(alias, "before") == [("before",)]
        traced = attempt(alias, fault)
        assert select(alias, "after") == [("after",)]
    plain = attempt(plain_alias, fault)
    assert traced == plain
    assert trace.statements[0].params == ["before"]
    assert trace.statements[-1].params == ["after"]
    return traced, trace


def the(trace: Trace, sql: str) -> Any:
    """The one recorded statement whose SQL starts with ``sql``."""
    (statement,) = [s for s in trace.statements if str(s.sql).startswith(sql)]
    return statement


# Raising in execute ------------------------------------------------------------------

SYNTAX_ERROR = {
    "sqlite": ("OperationalError", 'near "SELEC": syntax error'),
    "postgresql": (
        "ProgrammingError",
        'syntax error at or near "SELEC"\nLINE 1: SELEC 1\n        ^',
    ),
    "mysql": (
        "ProgrammingError",
        '(1064, "You have an error in your SQL syntax; check the manual that corresponds '
        "to your MariaDB server version for the right syntax to use near 'SELEC 1' at "
        'line 1")',
    ),
}


def syntax_error(alias: str, seen: list[Any]) -> Any:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELEC 1")


def test_syntax_error(vendor, alias, plain_alias):
    (outcome, seen, inside, after), trace = traced_and_plain(alias, plain_alias, syntax_error)
    name, message = SYNTAX_ERROR[vendor]
    assert (outcome[1].__module__, outcome[1].__name__, outcome[2]) == (
        "django.db.utils",
        name,
        message,
    )
    assert (inside, after) == ((True, False, True), (True, False, True))
    failed = the(trace, "SELEC 1")
    assert failed.error == (f"django.db.utils.{name}", message)
    assert failed.duration_ns is not None


UNIQUE_VIOLATION = {
    "sqlite": "UNIQUE constraint failed: tracer_faults.x",
    "postgresql": 'duplicate key value violates unique constraint "tracer_faults_pkey"\n'
    "DETAIL:  Key (x)=(1) already exists.",
    "mysql": "(1062, \"Duplicate entry '1' for key 'PRIMARY'\")",
}


def unique_violation(alias: str, seen: list[Any]) -> Any:
    # A temporary table: each connection its own, so the twins never wait on each other.
    connection = connections[alias]
    temporary = "TEMPORARY" if connection.vendor == "mysql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP {temporary} TABLE IF EXISTS tracer_faults")
        cursor.execute("CREATE TEMPORARY TABLE tracer_faults (x integer PRIMARY KEY)")
        cursor.execute("INSERT INTO tracer_faults (x) VALUES (%s)", [1])
        seen.append(cursor.rowcount)
        cursor.execute("INSERT INTO tracer_faults (x) VALUES (%s)", [1])


def test_unique_violation(vendor, alias, plain_alias):
    (outcome, seen, inside, after), trace = traced_and_plain(alias, plain_alias, unique_violation)
    assert (outcome[1].__qualname__, outcome[2]) == ("IntegrityError", UNIQUE_VIOLATION[vendor])
    assert seen == [1]
    # Django does not count integrity errors as making the connection unusable.
    assert (inside, after) == ((True, False, False), (True, False, False))
    inserts = [s for s in trace.statements if str(s.sql).startswith("INSERT INTO tracer_faults")]
    assert [(s.params, s.error) for s in inserts] == [
        ([1], None),
        ([1], ("django.db.utils.IntegrityError", UNIQUE_VIOLATION[vendor])),
    ]


TIMEOUT = {
    "sqlite": ("OperationalError", "interrupted"),
    "postgresql": ("OperationalError", "canceling statement due to statement timeout"),
    "mysql": (
        "OperationalError",
        "(1969, 'Query execution was interrupted (max_statement_time exceeded)')",
    ),
}


def timeout(alias: str, seen: list[Any]) -> Any:
    """A statement the database itself stops: a server-side time limit (SQLite has
    none: its progress handler interrupts the statement instead)."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL statement_timeout = 50")
            cursor.execute("SELECT pg_sleep(5)")
        elif connection.vendor == "mysql":
            cursor.execute("SET STATEMENT max_statement_time = 0.05 FOR SELECT SLEEP(5)")
        else:
            connection.connection.set_progress_handler(lambda: 1, 1000)
            try:
                cursor.execute(
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
                    "SELECT COUNT(*) FROM n"
                )
            finally:
                connection.connection.set_progress_handler(None, 0)


def test_server_side_timeout(vendor, alias, plain_alias):
    (outcome, seen, inside, after), trace = traced_and_plain(alias, plain_alias, timeout)
    name, message = TIMEOUT[vendor]
    assert (outcome[1].__qualname__, outcome[2]) == (name, message)
    assert (inside, after) == ((True, False, True), (True, False, True))
    assert [s.error for s in trace.statements if s.error] == [(f"django.db.utils.{name}", message)]


ORM_ERRORS = {
    "sqlite": ("returned", "x" * 101),  # SQLite does not enforce varchar lengths
    "postgresql": ("DataError", "value too long for type character varying(100)"),
    "mysql": ("DataError", "(1406, \"Data too long for column 'name' at row 1\")"),
}


def orm_errors(alias: str, seen: list[Any]) -> Any:
    try:
        Author.objects.using(alias).get(name="nobody")
    except Author.DoesNotExist as exc:
        seen.append(str(exc))
    return Author.objects.using(alias).create(name="x" * 101).name


def test_orm_errors(vendor, alias, plain_alias):
    (outcome, seen, inside, after), trace = traced_and_plain(alias, plain_alias, orm_errors)
    assert seen == ["Author matching query does not exist."]
    get, *create = [op for op in trace.operations if op.model is Author]
    assert (get.trigger, get.error) == (
        "get",
        ("tests.testapp.models.Author.DoesNotExist", "Author matching query does not exist."),
    )
    expected = ORM_ERRORS[vendor]
    if expected[0] == "returned":
        assert outcome == expected
        assert (inside, after) == ((True, False, False), (True, False, False))
        return
    assert (outcome[1].__qualname__, outcome[2]) == expected
    # A write that fails inside atomic() marks the block for rollback.
    assert (inside, after) == ((True, True, False), (True, False, False))
    assert [(op.trigger, op.error) for op in create] == [
        ("create", (f"django.db.utils.{expected[0]}", expected[1]))
    ]


# Raising mid-fetch -------------------------------------------------------------------
#
# The rows of a statement are computed as they are fetched on SQLite (one step of
# its virtual machine per row) and on PostgreSQL with a server-side cursor (Django's
# chunked cursor, used by .iterator()). A value that fails for a later row makes a
# later fetch raise. MariaDB is not here: mysqlclient reads the whole result at
# execute, so no fetch can fail there.

FETCH_VENDORS = ["sqlite", "postgresql"]
MIDFETCH = {
    "sqlite": ("OperationalError", "user-defined function raised exception"),
    "postgresql": ("DataError", "division by zero"),
}


def fails_at(alias: str, bad: int) -> str:
    """SQL of a value that fails on the row where the column is ``bad``: ``%s`` in it is
    the column."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return f"1 / (%s - {bad})"

    def check(value: int) -> int:
        if value == bad:
            raise ValueError("bad row")
        return value

    connection.ensure_connection()
    connection.connection.create_function("tracer_check", 1, check)
    return "tracer_check(%s)"


def numbers_1_to_1000(connection: Any) -> str:
    """A FROM source of one column ``x``, 1 to 1000, on each vendor."""
    if connection.vendor == "postgresql":
        return "generate_series(1, 1000) AS x"
    return (
        "(WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 1000)"
        " SELECT x FROM n)"
    )


def raw_midfetch(alias: str, seen: list[Any]) -> Any:
    connection = connections[alias]
    value = fails_at(alias, 500) % "x"
    source = numbers_1_to_1000(connection)
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT x, {value} FROM {source}")
        while rows := cursor.fetchmany(100):
            seen.extend(row[0] for row in rows)


def iterated_midfetch(alias: str, seen: list[Any]) -> Any:
    # The same, reading by iterating over the cursor.
    connection = connections[alias]
    value = fails_at(alias, 300) % "x"
    source = numbers_1_to_1000(connection)
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT x, {value} FROM {source}")
        for row in cursor:
            seen.append(row[0])


def orm_midfetch(alias: str, seen: list[Any]) -> Any:
    authors = Author.objects.using(alias)
    authors.bulk_create([Author(name=f"a{i:03}") for i in range(300)])
    bad = authors.order_by("id").values_list("id", flat=True)[250]
    annotated = authors.annotate(check=RawSQL(fails_at(alias, bad) % '"testapp_author"."id"', ()))
    for author in annotated.order_by("id").iterator(chunk_size=100):
        seen.append(author.name)


@pytest.mark.parametrize("vendor", FETCH_VENDORS, indirect=True)
def test_raw_fetch_fails_midway(vendor, alias, plain_alias):
    (outcome, seen, inside, after), trace = traced_and_plain(alias, plain_alias, raw_midfetch)
    name, message = MIDFETCH[vendor]
    assert (outcome[1].__qualname__, outcome[2]) == (name, message)
    # The rows of the fetches before the failing one reached the user.
    assert seen == list(range(1, 401))
    statement = the(trace, "SELECT x, ")
    assert (statement.rows_fetched, statement.fetch_calls) == (len(seen), len(seen) // 100 + 1)
    assert statement.error == (f"django.db.utils.{name}", message)


@pytest.mark.parametrize("vendor", FETCH_VENDORS, indirect=True)
def test_iterated_fetch_fails_midway(vendor, alias, plain_alias):
    (outcome, seen, inside, after), trace = traced_and_plain(alias, plain_alias, iterated_midfetch)
    name, message = MIDFETCH[vendor]
    assert (outcome[1].__qualname__, outcome[2]) == (name, message)
    # sqlite3 steps one row ahead; psycopg fetches server-side rows 100 at a time.
    assert seen == list(range(1, 299 if vendor == "sqlite" else 201))
    statement = the(trace, "SELECT x, ")
    assert statement.rows_fetched == len(seen)
    assert statement.error == (f"django.db.utils.{name}", message)


@pytest.mark.parametrize("vendor", FETCH_VENDORS, indirect=True)
def test_orm_iterator_fails_midway(vendor, alias, plain_alias):
    (outcome, seen, inside, after), trace = traced_and_plain(alias, plain_alias, orm_midfetch)
    name, message = MIDFETCH[vendor]
    assert (outcome[1].__qualname__, outcome[2]) == (name, message)
    assert seen == [f"a{i:03}" for i in range(200)]  # two chunks of 100
    statement = the(trace, 'SELECT "testapp_author"."id", "testapp_author"."name", ')
    assert statement.rows_fetched == 200
    assert statement.error == (f"django.db.utils.{name}", message)
    assert (statement.operation.trigger, statement.operation.error) == (
        "iterator",
        (f"django.db.utils.{name}", message),
    )


# A dropped connection ----------------------------------------------------------------


@contextmanager
def fresh(alias: str) -> Iterator[Any]:
    """A new connection for ``alias`` in this thread, outside the test's transaction
    (which a dropped connection would lose), closed and put back after the block."""
    original = connections[alias]
    connection = connections.create_connection(alias)
    connections[alias] = connection
    try:
        yield connection
    finally:
        connections[alias] = original
        connection.close()


def drop(connection: Any, killer: str) -> None:
    """End ``connection``'s session from the server side, through another connection,
    and wait until the server has ended it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_backend_pid()")
        else:
            cursor.execute("SELECT CONNECTION_ID()")
        (session,) = cursor.fetchone()
    with connections[killer].cursor() as cursor:
        if connection.vendor == "postgresql":
            # Waits (up to 5 s) until the backend has exited.
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [session])
            assert cursor.fetchone() == (True,)
        else:
            cursor.execute(f"KILL CONNECTION {int(session)}")
            for _ in range(10_000):
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s",
                    [session],
                )
                if cursor.fetchone() == (0,):
                    break
            else:
                raise AssertionError("MariaDB did not end the killed session")


DROPPED = {
    "postgresql": (
        "terminating connection due to administrator command",
        "psycopg.errors.AdminShutdown",
    ),
    "mysql": ("(2013, 'Lost connection to server during query')", "MySQLdb.OperationalError"),
}


def dropped_and_back(alias: str, killer: str, *, in_atomic: bool) -> tuple[Any, ...]:
    """Drop a fresh connection, fail a query on it, close it as Django does between
    requests, and run a query again (it reconnects)."""
    with fresh(alias) as connection:
        before = select(alias, "before")
        drop(connection, killer)
        try:
            if in_atomic:
                with transaction.atomic(using=alias):
                    select(alias, "dropped")
            else:
                select(alias, "dropped")
        except Exception as exc:
            cause = type(exc.__cause__)
            failure = (type(exc), str(exc), f"{cause.__module__}.{cause.__qualname__}")
        failed_state = (state(alias), connection.connection is None)
        connection.close_if_unusable_or_obsolete()
        closed = connection.connection is None
        after = select(alias, "after")
        return before, failure, failed_state, closed, after, state(alias)


def run_by_test(statement: Any) -> bool:
    """Not one of the statements an engine runs on connecting."""
    sql = str(statement.sql).strip()
    return not sql.startswith(
        ("SELECT VERSION()", "SET SESSION", "SELECT pg_backend_pid", "SELECT CONNECTION_ID")
    )


def test_dropped_connection_fails_then_reconnects(server_vendor):
    alias = {"postgresql": "postgresql", "mysql": "mysql"}[server_vendor]
    killer = f"{alias}_plain"
    with tracer.capture() as trace:
        traced = dropped_and_back(alias, killer, in_atomic=False)
    assert traced == dropped_and_back(killer, alias, in_atomic=False)
    message, cause = DROPPED[server_vendor]
    error = ("django.db.utils.OperationalError", message)
    assert traced == (
        [("before",)],
        (OperationalError, message, cause),
        # Django counts the error; the connection object is still there, unusable...
        ((False, False, True), False),
        # ...until Django closes it (as it does between requests)...
        True,
        # ...and the next query connects again.
        [("after",)],
        (False, False, False),
    )
    statements = [(s.sql, s.params, s.error) for s in trace.statements if run_by_test(s)]
    assert statements == [
        ("SELECT %s", ["before"], None),
        ("SELECT %s", ["dropped"], error),
        ("SELECT %s", ["after"], None),
    ]
    assert [(e.alias, e.kind, e.error) for e in trace.events] == [
        (alias, "connect", None),
        (alias, "autocommit on", None),
        (alias, "close", None),
        (alias, "connect", None),
        (alias, "autocommit on", None),
        (alias, "close", None),
    ]


def test_dropped_connection_inside_atomic(server_vendor):
    alias = {"postgresql": "postgresql", "mysql": "mysql"}[server_vendor]
    killer = f"{alias}_plain"
    with tracer.capture() as trace:
        traced = dropped_and_back(alias, killer, in_atomic=True)
    assert traced == dropped_and_back(killer, alias, in_atomic=True)
    message, cause = DROPPED[server_vendor]
    error = ("django.db.utils.OperationalError", message)
    before, failure, failed_state, closed, after, final = traced
    assert (before, failure, closed, after, final) == (
        [("before",)],
        (OperationalError, message, cause),
        True,
        [("after",)],
        (False, False, False),
    )
    statements = [(s.sql, s.params, s.error) for s in trace.statements if run_by_test(s)]
    if server_vendor == "mysql":
        # Turning autocommit off (atomic()'s BEGIN) is what first reaches the server.
        assert failed_state == ((False, False, True), False)
        assert statements == [
            ("SELECT %s", ["before"], None),
            ("BEGIN", None, error),
            ("SELECT %s", ["after"], None),
        ]
        return
    # psycopg turns autocommit off without the server; the SELECT fails, then the
    # rollback: Django closes the connection, and opens it again to turn autocommit
    # back on. A successful rollback... of nothing: errors_occurred is reset.
    assert failed_state == ((False, False, False), False)
    assert statements == [
        ("SELECT %s", ["before"], None),
        ("BEGIN", None, None),
        ("SELECT %s", ["dropped"], error),
        ("ROLLBACK", None, ("django.db.utils.OperationalError", "the connection is lost")),
        ("SELECT %s", ["after"], None),
    ]
    assert [e.kind for e in trace.events] == [
        "connect",
        "autocommit on",
        "close",  # after the failed rollback
        "connect",
        "autocommit on",
        "autocommit on",  # atomic() restoring autocommit
        "close",  # close_if_unusable_or_obsolete()
        "connect",
        "autocommit on",
        "close",
    ]


# A bug in the recorder ---------------------------------------------------------------


def workload(alias: str, seen: list[Any]) -> Any:
    """Raw SQL; ORM reads (iteration, an iterator, select_related, prefetch_related, a
    lazy related load) and writes; an ORM exception; a savepoint; then a raw error."""
    seen.append(select(alias, "raw"))
    ann, bob = Author.objects.using(alias).bulk_create(
        [Author(name="forced"), Author(name="forced")]
    )
    Book.objects.using(alias).bulk_create(
        [Book(title="one", author=ann), Book(title="two", author=bob)]
    )
    authors = Author.objects.using(alias).filter(name="forced").order_by("id")
    seen.append([author.name for author in authors])
    seen.append(list(authors.values_list("name", flat=True)))
    seen.append([author.name for author in authors.iterator(chunk_size=10)])
    seen.append(authors.count())
    books = Book.objects.using(alias).order_by("id")
    seen.append([book.author.name for book in books])  # lazy loads: an N+1
    seen.append([book.author.name for book in books.select_related("author")])
    seen.append([len(author.books.all()) for author in authors.prefetch_related("books")])
    try:
        Author.objects.using(alias).get(name="nobody")
    except Author.DoesNotExist as exc:
        seen.append(str(exc))
    with transaction.atomic(using=alias):
        seen.append(authors.update(name="renamed"))
    syntax_error(alias, seen)


#: Recorder internals a bug could make raise: (module or class, attribute).
INTERNALS = [
    ("tracer.recorder", "begin_statement"),
    ("tracer.stacks", "capture_shared"),
    ("tracer.pipeline", "_flatten"),
    ("tracer.querystate", "describe"),
    ("tracer.pipeline", "describe_error"),
    ("tracer.backend.cursor", "describe_error"),
    ("tracer.recorder", "hold"),
    ("tracer.recorder", "loaded_by"),
    ("tracer.recorder", "watch"),
    ("tracer.sqlcomment", "commented"),
]


class Forced(RuntimeError):
    pass


@contextmanager
def forced(target: str, name: str) -> Iterator[list[int]]:
    """Make ``target.name`` raise ``Forced`` inside the block; the list counts the calls."""
    calls: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise Forced(f"forced bug in {target}.{name}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(f"{target}.{name}", broken)
        yield calls


@pytest.fixture
def fresh_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first failure of the process is the one logged.
    monkeypatch.setattr(recorder, "_failures", 0)
    # Shapes are cached by SQL: without the cache, each compile describes its query.
    monkeypatch.setattr("tracer.backend.compiler._shapes", {})


@pytest.mark.parametrize("internal", INTERNALS, ids=lambda t: f"{t[0]}.{t[1]}")
def test_recorder_bug_never_reaches_the_query(
    internal, vendor, alias, plain_alias, fresh_failures, caplog
):
    # SQL comments change the SQL sent (and so a syntax error's message): on only
    # while the comment itself is what fails, so that no comment is sent.
    comments = internal == ("tracer.sqlcomment", "commented")
    plain = attempt(plain_alias, workload)
    with override_settings(TRACER={"SQL_COMMENTS": comments}), tracer.capture() as trace:
        select(alias, "before")
        with forced(*internal) as calls, caplog.at_level(logging.ERROR, logger="tracer"):
            traced = attempt(alias, workload)
        select(alias, "after")
    assert traced == plain
    outcome, seen, inside, after = traced
    assert (outcome[0], outcome[1].__qualname__, outcome[2]) == (
        "raised",
        *SYNTAX_ERROR[vendor],
    )
    assert seen == [
        [("raw",)],
        ["forced", "forced"],
        ["forced", "forced"],
        ["forced", "forced"],
        2,
        ["forced", "forced"],
        ["forced", "forced"],
        [1, 1],
        "Author matching query does not exist.",
        2,
    ]
    assert calls, "the workload never reached the broken internal"
    # Each failure is counted where the recorder counts them; the first is logged.
    assert recorder.failures() == len(calls)
    [record] = caplog.records
    assert record.getMessage().startswith("tracer failed to record a statement")
    assert isinstance(record.exc_info[1], Forced)
    # What was recorded before the bug is all there, and recording went on after it.
    assert trace.statements[0].params == ["before"]
    assert trace.statements[-1].params == ["after"]


def test_recorder_bug_starting_an_always_trace(monkeypatch, fresh_failures, caplog):
    plain = attempt("sqlite_plain", workload)
    # The recorder starts a rolling trace when a statement runs outside any capture
    # (none yet in this context).
    monkeypatch.setattr(recorder, "_ambient", recorder.ContextVar("test_ambient", default=None))
    with override_settings(TRACER={"CAPTURE": "always"}):
        with forced("tracer.recorder", "_start_ambient") as calls:
            with caplog.at_level(logging.ERROR, logger="tracer"):
                traced = attempt("default", workload)
    assert traced == plain
    assert recorder.failures() == len(calls) > 0
    assert len(caplog.records) == 1
    assert recorder._ambient.get() is None


def test_recorder_bug_ending_a_capture(monkeypatch, fresh_failures, caplog):
    with forced("tracer.trace.Trace", "finish") as calls:
        with caplog.at_level(logging.ERROR, logger="tracer"):
            with pytest.raises(ValueError, match="^the block's own$"):
                with tracer.capture() as trace:
                    select("default", 1)
                    raise ValueError("the block's own")
    assert (len(calls), recorder.failures(), len(caplog.records)) == (1, 1, 1)
    assert [s.params for s in trace.statements] == [[1]]
    assert tracer.current_trace() is None


def test_recorder_bug_on_a_failed_connect(fresh_failures, caplog):
    from django.db.backends.sqlite3.base import DatabaseWrapper as PlainWrapper

    from tracer.backend.base import DatabaseWrapper

    settings_dict = {**connections["default"].settings_dict, "NAME": "/nonexistent/dir/db"}

    def connect(wrapper: type) -> tuple[Any, ...]:
        try:
            wrapper(settings_dict, "broken").ensure_connection()
        except Exception as exc:
            return type(exc), str(exc), type(exc.__cause__)
        raise AssertionError("connected")

    with forced("tracer.backend.base", "describe_error") as calls, tracer.capture() as trace:
        with caplog.at_level(logging.ERROR, logger="tracer"):
            traced = connect(DatabaseWrapper)
    assert traced == connect(PlainWrapper)
    assert traced == (OperationalError, "unable to open database file", sqlite3.OperationalError)
    assert (len(calls), recorder.failures(), len(caplog.records)) == (1, 1, 1)
    [event] = trace.events
    assert (event.kind, event.error, event.duration_ns is not None) == ("connect", None, True)
