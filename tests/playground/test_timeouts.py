"""The statement time limit, on each engine, with a statement that would run for
30 seconds (or forever): it is stopped, and the limit ends with the block."""

from __future__ import annotations

import pytest
from django.db import OperationalError, transaction

import tracer
from tests.playground.test_running import SLOW
from tracer.playground import timeouts
from tracer.playground.timeouts import is_timeout, statement_timeout

pytestmark = pytest.mark.django_db(databases="__all__")


def test_a_slow_statement_is_stopped(alias, vendor, connection):
    with transaction.atomic(using=alias):
        with tracer.capture() as trace, pytest.raises(OperationalError) as info:
            with statement_timeout(connection, 50), connection.cursor() as cursor:
                cursor.execute(SLOW[vendor])
        transaction.set_rollback(True, using=alias)
    assert is_timeout(info.value, vendor)
    # The tracer's own statements (setting and restoring the limit) are not recorded.
    assert [statement.sql for statement in trace.statements] == [SLOW[vendor]]


def test_the_limit_ends_with_the_block(alias, vendor, connection, monkeypatch):
    with transaction.atomic(using=alias):
        with statement_timeout(connection, 50):
            pass
        transaction.set_rollback(True, using=alias)
    if vendor == "sqlite":
        # Past the deadline now: a handler left behind would interrupt this.
        monkeypatch.setattr(timeouts.time, "monotonic", lambda: 1e12)
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("0",)
        elif vendor == "mysql":
            cursor.execute("SELECT @@SESSION.max_statement_time")
            assert cursor.fetchone() == (0.0,)
        else:
            cursor.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                "WHERE x < 5000) SELECT count(*) FROM c"
            )
            assert cursor.fetchone() == (5000,)


def test_other_errors_are_not_timeouts(alias, vendor, connection):
    with transaction.atomic(using=alias):
        with pytest.raises(Exception) as info:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")
        transaction.set_rollback(True, using=alias)
    assert not is_timeout(info.value, vendor)


def test_postgresql_needs_a_transaction():
    class Outside:
        vendor = "postgresql"
        in_atomic_block = False

    with pytest.raises(ValueError) as info:
        with statement_timeout(Outside(), 50):
            pass
    assert str(info.value) == "A PostgreSQL statement timeout is set inside a transaction."


def test_unsupported_vendors_and_bad_limits():
    class Oracle:
        vendor = "oracle"

    with pytest.raises(NotImplementedError):
        with statement_timeout(Oracle(), 50):
            pass
    with pytest.raises(ValueError):
        with statement_timeout(Oracle(), 0):
            pass
