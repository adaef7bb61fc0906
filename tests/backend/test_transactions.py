"""Transaction boundaries and connection lifecycle, however the engine makes them."""

from __future__ import annotations

import pytest
from django.db import connections, transaction

import tracer
from tests.testapp.models import Author

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def shape(trace, alias):
    """(kind, sql) of the statements on one alias, savepoint names normalised."""
    import re

    return [
        (s.kind, re.sub(r"s\d+_x\d+", "sN", str(s.sql)))
        for s in trace.statements
        if s.alias == alias and not str(s.sql).upper().startswith("SET ")
    ]


def test_atomic_commit(alias, vendor):
    connections[alias].ensure_connection()
    with tracer.capture() as trace:
        with transaction.atomic(using=alias):
            Author.objects.using(alias).create(name="Ann")
    steps = shape(trace, alias)
    # SQLite starts transactions with SQL; the others by turning autocommit off.
    begin = ("execute", "BEGIN") if vendor == "sqlite" else ("transaction", "BEGIN")
    assert steps[0] == begin
    assert steps[1][1].startswith("INSERT INTO")
    assert steps[-1] == ("transaction", "COMMIT")
    assert len(steps) == 3
    assert [e.kind for e in trace.events] == ["autocommit on"]


def test_rollback_and_savepoints(alias, vendor):
    connections[alias].ensure_connection()
    with tracer.capture() as trace:
        with transaction.atomic(using=alias):
            Author.objects.using(alias).create(name="Ann")
            try:
                with transaction.atomic(using=alias):
                    Author.objects.using(alias).create(name="Bob")
                    raise ValueError
            except ValueError:
                pass
            transaction.set_rollback(True, using=alias)
    steps = [sql for _, sql in shape(trace, alias)]
    quote = "`" if vendor == "mysql" else '"'
    assert steps[2:] == [
        f"SAVEPOINT {quote}sN{quote}",
        steps[3],
        f"ROLLBACK TO SAVEPOINT {quote}sN{quote}",
        f"RELEASE SAVEPOINT {quote}sN{quote}",
        "ROLLBACK",
    ]
    assert steps[3].startswith("INSERT INTO")
    assert Author.objects.using(alias).count() == 0


def test_connect_and_close_are_events(alias):
    connection = connections[alias]
    connection.close()
    with tracer.capture() as trace:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        connection.close()
    kinds = [event.kind for event in trace.events]
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        assert kinds == []  # in-memory SQLite ignores close(): it would lose the data
        return
    assert kinds == ["connect", "autocommit on", "close"]
    connect = trace.events[0]
    assert connect.alias == alias
    assert connect.duration_ns > 0
    assert connect.start_ns <= trace.statements[-1].start_ns


def test_failed_connect_is_recorded():
    from django.db import DEFAULT_DB_ALIAS
    from django.db.utils import OperationalError

    from tracer.backend.base import DatabaseWrapper

    settings_dict = {
        **connections[DEFAULT_DB_ALIAS].settings_dict,
        "NAME": "/nonexistent/dir/db.sqlite3",
    }
    connection = DatabaseWrapper(settings_dict, "broken")
    with tracer.capture() as trace:
        with pytest.raises(OperationalError, match="unable to open database file"):
            connection.ensure_connection()
    (event,) = trace.events
    assert event.kind == "connect"
    assert event.error == ("sqlite3.OperationalError", "unable to open database file")


def test_callproc(server_vendor):
    vendor = server_vendor
    connection = connections[vendor]
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "CREATE OR REPLACE FUNCTION tracer_double(x integer) RETURNS integer "
                "AS $$ SELECT x * 2 $$ LANGUAGE SQL"
            )
        else:
            cursor.execute("DROP PROCEDURE IF EXISTS tracer_double")
            cursor.execute("CREATE PROCEDURE tracer_double(IN x INT) BEGIN SELECT x * 2; END")
    try:
        with tracer.capture() as trace:
            with connection.cursor() as cursor:
                cursor.callproc("tracer_double", [21])
                assert cursor.fetchone() == (42,)
        (call,) = [s for s in trace.statements if s.kind == "callproc"]
        assert call.sql == "tracer_double"
        assert call.params == [21]
        assert call.rows_fetched == 1
    finally:
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("DROP FUNCTION tracer_double(integer)")
            else:
                cursor.execute("DROP PROCEDURE tracer_double")
