"""Recording cursors: everything sent to the database is recorded, nothing else changes."""

from __future__ import annotations

import contextlib
import logging
import re
from decimal import Decimal

import pytest
from django.db import IntegrityError, ProgrammingError, connections, transaction
from django.test.utils import isolate_apps

import tracer
from tests.testapp.models import Author, Book
from tracer import recorder
from tracer.trace import UNRECORDED

pytestmark = pytest.mark.django_db(databases="__all__")


def executed(trace):
    return [s for s in trace.statements if s.kind != "transaction"]


def make_books(alias, count=5):
    author = Author.objects.using(alias).create(name="Ann")
    Book.objects.using(alias).bulk_create(
        Book(title=f"B{i}", author=author, price=Decimal(i)) for i in range(count)
    )
    return author


def test_execute_records_sql_params_and_timing(connection, vendor):
    with tracer.capture() as trace:
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s + 1", [41])
            assert cursor.fetchone() == (42,)
    (statement,) = [s for s in trace.statements if s.sql == "SELECT %s + 1"]
    assert statement.alias == connection.alias
    assert statement.vendor == vendor
    assert statement.kind == "execute"
    assert statement.params == [41]
    assert statement.duration_ns > 0
    assert statement.start_ns >= trace.start_ns
    assert statement.rows_fetched == 1
    assert statement.fetch_calls == 1
    assert statement.error is None
    assert statement.in_atomic_block is True  # inside the test's transaction


def test_fetches_are_counted_per_call(connection, alias):
    make_books(alias, 5)
    with tracer.capture() as trace:
        with connection.cursor() as cursor:
            cursor.execute("SELECT title FROM testapp_book ORDER BY title")
            assert cursor.fetchone() == ("B0",)
            assert list(cursor.fetchmany(2)) == [("B1",), ("B2",)]
            assert list(cursor.fetchall()) == [("B3",), ("B4",)]
            assert cursor.fetchone() is None
    (statement,) = [s for s in trace.statements if s.sql.startswith("SELECT title")]
    assert (statement.rows_fetched, statement.fetch_calls) == (5, 4)
    assert statement.fetch_ns > 0


def test_iteration_is_counted(connection, alias):
    make_books(alias, 3)
    with tracer.capture() as trace:
        with connection.cursor() as cursor:
            cursor.execute("SELECT title FROM testapp_book ORDER BY title")
            assert [row for row in cursor] == [("B0",), ("B1",), ("B2",)]
    (statement,) = [s for s in trace.statements if s.sql.startswith("SELECT title")]
    assert (statement.rows_fetched, statement.fetch_calls) == (3, 1)


def test_executemany_keeps_list_params(connection, alias):
    author = Author.objects.using(alias).create(name="Ann")
    params = [("x", author.pk), ("y", author.pk)]
    with tracer.capture() as trace:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO testapp_book (title, author_id, price) VALUES (%s, %s, 0)", params
            )
    (statement,) = executed(trace)
    assert statement.kind == "executemany"
    assert statement.params is params
    assert statement.rowcount == 2
    assert Book.objects.using(alias).count() == 2


def test_executemany_never_consumes_a_generator(connection, alias):
    author = Author.objects.using(alias).create(name="Ann")
    consumed = []

    def rows():
        for title in ("x", "y", "z"):
            consumed.append(title)
            yield (title, author.pk)

    with tracer.capture() as trace:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO testapp_book (title, author_id, price) VALUES (%s, %s, 0)", rows()
            )
    (statement,) = executed(trace)
    assert statement.params == UNRECORDED
    assert consumed == ["x", "y", "z"]  # by the driver, once
    assert sorted(Book.objects.using(alias).values_list("title", flat=True)) == ["x", "y", "z"]


def test_error_is_recorded_and_reaches_caller_unchanged(connection, plain_connection):
    def failing(conn):
        with conn.cursor() as cursor:
            try:
                with transaction.atomic(using=conn.alias):
                    cursor.execute("SELECT * FROM no_such_table")
            except Exception as exc:
                return exc
        raise AssertionError("no exception")

    plain_error = failing(plain_connection)
    with tracer.capture() as trace:
        traced_error = failing(connection)
    assert type(traced_error) is type(plain_error)
    assert str(traced_error) == str(plain_error)
    (statement,) = [s for s in trace.statements if s.sql == "SELECT * FROM no_such_table"]
    assert statement.error == (
        f"{type(plain_error).__module__}.{type(plain_error).__qualname__}",
        str(plain_error),
    )
    assert statement.duration_ns > 0


def test_integrity_error_through_orm(alias):
    author = Author.objects.using(alias).create(name="Ann")
    with tracer.capture() as trace:
        with pytest.raises(IntegrityError):
            with transaction.atomic(using=alias):
                Book.objects.using(alias).create(title=None, author=author)
    (insert,) = [s for s in trace.statements if "INSERT" in s.sql]
    assert insert.error[0] == "django.db.utils.IntegrityError"


def test_recorder_failure_never_breaks_the_query(connection, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("recorder bug")

    monkeypatch.setattr(recorder, "begin_statement", broken)
    monkeypatch.setattr(recorder, "_failures", 0)
    with caplog.at_level(logging.ERROR, logger="tracer"):
        with tracer.capture() as trace:
            with connection.cursor() as cursor:
                for _ in range(3):
                    cursor.execute("SELECT %s", [7])
                    assert list(cursor.fetchall()) == [(7,)]
    assert trace.statements == []
    assert recorder.failures() == 3
    (record,) = caplog.records
    assert record.message.startswith("tracer failed to record a statement")
    assert "RuntimeError: recorder bug" in record.exc_text


def test_nothing_recorded_outside_capture(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor._tracer_statement is None
        assert cursor.fetchone() == (1,)


def test_queries_log_untouched(connection):
    assert not connection.queries_logged
    with tracer.capture() as trace:
        Author.objects.using(connection.alias).count()
    assert len(trace.statements) == 1
    assert list(connection.queries_log) == []


def orm_workload(alias):
    author = Author.objects.using(alias).create(name="Ann")
    Book.objects.using(alias).bulk_create(
        [Book(title="a", author=author), Book(title="b", author=author)]
    )
    with transaction.atomic(using=alias):
        Book.objects.using(alias).filter(title="a").update(price=3)
    list(Book.objects.using(alias).select_related("author").order_by("title"))
    list(Book.objects.using(alias).order_by("title").iterator(chunk_size=1))
    list(Author.objects.using(alias).prefetch_related("books"))
    list(Author.objects.using(alias).raw("SELECT * FROM testapp_author"))
    Book.objects.using(alias).filter(title="b").delete()
    return sorted(Book.objects.using(alias).values_list("title", "price"))


def sent(alias, workload):
    """The SQL texts the connection sends through its cursors, and the result."""
    texts = []

    def spy(execute, sql, params, many, context):
        # Savepoint names carry a per-connection counter.
        texts.append(re.sub(r"s\d+_x\d+", "sN", str(sql)))
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(spy):
        result = workload(alias)
        Book.objects.using(alias).all().delete()
        Author.objects.using(alias).all().delete()
    return texts, result


def test_recording_sends_no_sql_of_its_own(alias):
    quiet_sql, quiet_result = sent(alias, orm_workload)
    with tracer.capture() as trace:
        recorded_sql, recorded_result = sent(alias, orm_workload)
    assert recorded_result == quiet_result == [("a", Decimal("3.00"))]
    assert recorded_sql == quiet_sql
    assert [re.sub(r"s\d+_x\d+", "sN", str(s.sql)) for s in executed(trace)] == recorded_sql


# Committed, one alias after the other: the aliases share one test database, and
# InnoDB row locks held by one open test transaction would block the other.
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_same_results_as_plain(alias, plain_alias):
    # Warm both up: engines cache server facts on first use (MariaDB's version query).
    sent(plain_alias, orm_workload)
    sent(alias, orm_workload)
    plain_sql, plain_result = sent(plain_alias, orm_workload)
    with tracer.capture():
        traced_sql, traced_result = sent(alias, orm_workload)
    assert traced_result == plain_result
    assert traced_sql == plain_sql


def test_iterator_chunks_recorded_lazily(alias, vendor):
    make_books(alias, 5)
    with tracer.capture() as trace:
        iterator = Book.objects.using(alias).order_by("title").iterator(chunk_size=2)
        assert trace.statements == []  # nothing runs before the first row is asked for
        assert [next(iterator).title for _ in range(3)] == ["B0", "B1", "B2"]
        (statement,) = trace.statements
        # Two chunks of two rows fetched so far; the rest is never read.
        assert (statement.rows_fetched, statement.fetch_calls) == (4, 2)
        iterator.close()
    if vendor == "postgresql":
        # A server-side cursor: the engine declares it itself, the driver fetches.
        assert statement.sql.startswith("SELECT")
    assert statement.rows_fetched == 4


def test_raw_queryset(alias):
    make_books(alias, 3)
    with tracer.capture() as trace:
        titles = [
            b.title
            for b in Book.objects.using(alias).raw("SELECT * FROM testapp_book ORDER BY title")
        ]
    assert titles == ["B0", "B1", "B2"]
    (statement,) = trace.statements
    assert statement.sql == "SELECT * FROM testapp_book ORDER BY title"
    assert statement.rows_fetched == 3


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_schema_editor_ddl_is_recorded(alias):
    from django.db import models

    with isolate_apps("tests.testapp"):

        class Temp(models.Model):
            name = models.CharField(max_length=10)

            class Meta:
                app_label = "testapp"
                db_table = f"tracer_temp_{alias}"

    connection = connections[alias]
    with tracer.capture() as trace:
        with connection.schema_editor() as editor:
            editor.create_model(Temp)
            editor.delete_model(Temp)
    sql = [str(s.sql) for s in executed(trace)]
    assert any(s.startswith("CREATE TABLE") and f"tracer_temp_{alias}" in s for s in sql)
    assert any(s.startswith("DROP TABLE") for s in sql)


def test_foreign_cursor_wrapper_is_left_alone_with_a_warning(caplog):
    from tracer.backend.cursor import _untraceable, trace_cursor

    class Foreign:
        pass

    foreign = Foreign()
    with caplog.at_level(logging.WARNING, logger="tracer"):
        assert trace_cursor(foreign) is foreign
        assert trace_cursor(Foreign()).__class__ is Foreign
    _untraceable.discard(Foreign)
    (record,) = caplog.records
    assert record.getMessage() == (
        "tracer cannot record through tests.backend.test_cursor.test_foreign_cursor_wrapper"
        "_is_left_alone_with_a_warning.<locals>.Foreign: it does not derive from Django's "
        "CursorWrapper. Its statements are not recorded."
    )


@pytest.mark.parametrize("recording", [False, True], ids=["idle", "recording"])
def test_fetch_errors_converted_like_plain(connection, plain_connection, recording):
    def fetch_without_result(conn):
        with conn.cursor() as cursor:
            cursor.execute("UPDATE testapp_author SET name = name WHERE id = -1")
            try:
                return ("result", cursor.fetchall())
            except Exception as exc:
                return ("error", type(exc), str(exc))

    expected = fetch_without_result(plain_connection)
    with tracer.capture() if recording else contextlib.nullcontext():
        assert fetch_without_result(connection) == expected
    if connection.vendor == "postgresql":
        assert expected[:2] == ("error", ProgrammingError)  # Django's, not psycopg's
