"""What a trace holds: plain Python objects, no Django imports.

Objects here are created on the hot path, so they use ``__slots__``, take raw values
(SQL and params exactly as the driver got them) and do no formatting; anything
derived is computed when someone looks.
"""

from __future__ import annotations

import time
from typing import Any

#: The params of an ``executemany`` whose ``param_list`` was an iterator: the driver
#: consumes it, so the recorder must not (and cannot) keep it.
UNRECORDED = "<iterator: not recorded>"

#: The alias Django gives the connections it opens without a database
#: (``_nodb_cursor``: CREATE/DROP DATABASE while setting up test databases).
NO_DB_ALIAS = "__no_db__"


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(exception class path, message): what a record keeps of an exception, so that
    it holds no traceback and no frames alive."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc)


class Statement:
    """One call that sent work to the database server.

    ``kind`` is ``"execute"``, ``"executemany"``, ``"callproc"`` or ``"transaction"``
    (BEGIN, COMMIT or ROLLBACK made as a driver call rather than as SQL text; ``sql``
    then holds that word, as in Django's own ``connection.queries``).
    """

    __slots__ = (
        "alias",
        "vendor",
        "kind",
        "sql",
        "params",
        "start_ns",
        "duration_ns",
        "rowcount",
        "rows_fetched",
        "fetch_ns",
        "fetch_calls",
        "error",
        "in_atomic_block",
    )

    def __init__(
        self,
        alias: str,
        vendor: str,
        kind: str,
        sql: Any,
        params: Any,
        in_atomic_block: bool,
    ) -> None:
        self.alias = alias
        self.vendor = vendor
        self.kind = kind
        self.sql = sql
        self.params = params
        self.in_atomic_block = in_atomic_block
        self.start_ns = 0
        #: None until the call returns or raises.
        self.duration_ns: int | None = None
        #: The driver's ``cursor.rowcount`` after the call (-1 where it has none).
        self.rowcount: int | None = None
        self.rows_fetched = 0
        self.fetch_ns = 0
        self.fetch_calls = 0
        #: (exception class path, message) if the call raised.
        self.error: tuple[str, str] | None = None

    @property
    def duration_ms(self) -> float | None:
        return None if self.duration_ns is None else self.duration_ns / 1e6

    @property
    def is_setup(self) -> bool:
        """Whether it ran on a connection without a database (test-database setup)."""
        return self.alias == NO_DB_ALIAS

    def __repr__(self) -> str:
        sql = self.sql if isinstance(self.sql, str) else repr(self.sql)
        if len(sql) > 60:
            sql = sql[:57] + "..."
        return f"<Statement {self.alias} {self.kind} {sql!r}>"


class Event:
    """Something that happened to a connection without sending a statement:
    ``"connect"``, ``"close"``, ``"autocommit on"``."""

    __slots__ = ("alias", "vendor", "kind", "start_ns", "duration_ns", "error")

    def __init__(self, alias: str, vendor: str, kind: str, start_ns: int) -> None:
        self.alias = alias
        self.vendor = vendor
        self.kind = kind
        self.start_ns = start_ns
        self.duration_ns: int | None = None
        self.error: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return f"<Event {self.alias} {self.kind}>"


class Trace:
    """One unit of work: a ``capture()`` block, a request, a rolling 'always' trace."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        #: Wall-clock start, for display; durations use the monotonic ``*_ns`` clocks.
        self.started_at = time.time()
        self.start_ns = time.perf_counter_ns()
        self.end_ns: int | None = None
        self.statements: list[Statement] = []
        self.events: list[Event] = []

    @property
    def finished(self) -> bool:
        return self.end_ns is not None

    @property
    def duration_ns(self) -> int:
        end = self.end_ns if self.end_ns is not None else time.perf_counter_ns()
        return end - self.start_ns

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6

    @property
    def db_ms(self) -> float:
        return self.db_ns / 1e6

    @property
    def db_ns(self) -> int:
        """Time spent in database calls: execution plus fetching."""
        return sum((s.duration_ns or 0) + s.fetch_ns for s in self.statements)

    def finish(self) -> None:
        if self.end_ns is None:
            self.end_ns = time.perf_counter_ns()

    def __repr__(self) -> str:
        return f"<Trace {self.label!r} statements={len(self.statements)}>"
