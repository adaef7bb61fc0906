"""A time limit on every statement a block runs, per vendor.

- PostgreSQL: ``set_config('statement_timeout', ..., true)``, local to the current
  transaction (so the block must run inside one; the rollback or commit ends it).
- MariaDB: ``SET SESSION max_statement_time`` (seconds); MySQL: ``SET SESSION
  max_execution_time`` (milliseconds, SELECTs only). The previous value is restored.
- SQLite: a progress handler on the driver's connection that interrupts the
  statement once the deadline has passed (the statement fails with "interrupted").

The tracer's own statements here are kept out of every trace (recorder.suspended).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tracer import recorder

__all__ = ["VENDORS", "is_timeout", "statement_timeout"]

#: The vendors whose statements can be given a time limit.
VENDORS = ("sqlite", "postgresql", "mysql")
#: SQLite virtual machine instructions between two looks at the clock.
SQLITE_STEPS = 1000


@contextmanager
def statement_timeout(connection: Any, timeout_ms: int) -> Iterator[None]:
    """Limit each statement run on ``connection`` inside the block to ``timeout_ms``
    milliseconds. Raises NotImplementedError for other vendors."""
    if timeout_ms <= 0:
        raise ValueError("timeout_ms must be positive.")
    vendor = connection.vendor
    if vendor == "postgresql":
        if not connection.in_atomic_block:
            raise ValueError("A PostgreSQL statement timeout is set inside a transaction.")
        with recorder.suspended(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)", [f"{int(timeout_ms)}ms"]
            )
        yield
    elif vendor == "mysql":
        with _mysql(connection, timeout_ms):
            yield
    elif vendor == "sqlite":
        with _sqlite(connection, timeout_ms):
            yield
    else:
        raise NotImplementedError(
            f"No statement timeout on {vendor}: only on {', '.join(VENDORS)}."
        )


@contextmanager
def _mysql(connection: Any, timeout_ms: int) -> Iterator[None]:
    with recorder.suspended():
        if connection.mysql_is_mariadb:
            variable, limit = "max_statement_time", timeout_ms / 1000
        else:
            variable, limit = "max_execution_time", int(timeout_ms)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT @@SESSION.{variable}")
            (previous,) = cursor.fetchone()
            cursor.execute(f"SET SESSION {variable} = %s", [limit])
    try:
        yield
    finally:
        with recorder.suspended(), connection.cursor() as cursor:
            cursor.execute(f"SET SESSION {variable} = %s", [previous])


@contextmanager
def _sqlite(connection: Any, timeout_ms: int) -> Iterator[None]:
    with recorder.suspended():
        connection.ensure_connection()
    raw = connection.connection
    deadline = time.monotonic() + timeout_ms / 1000

    def past_deadline() -> int:
        return 1 if time.monotonic() > deadline else 0

    raw.set_progress_handler(past_deadline, SQLITE_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, SQLITE_STEPS)


# PostgreSQL's SQLSTATE for a cancelled statement; MariaDB's and MySQL's error codes.
_PG_CANCELED = "57014"
_MYSQL_CODES = (1969, 3024)


def is_timeout(exc: BaseException, vendor: str) -> bool:
    """Whether ``exc`` is a statement stopped by ``statement_timeout``."""
    cause = exc.__cause__ or exc
    if vendor == "postgresql":
        return getattr(cause, "sqlstate", None) == _PG_CANCELED or (
            "statement timeout" in str(exc)
        )
    if vendor == "mysql":
        args: tuple[Any, ...] = tuple(getattr(cause, "args", ()) or exc.args)
        return len(args) > 0 and args[0] in _MYSQL_CODES
    if vendor == "sqlite":
        return str(exc) == "interrupted"
    return False
