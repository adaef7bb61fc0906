"""Recording cursors: the engine's own cursor wrapper, with recording mixed in.

One traced subclass is built per cursor wrapper class (cached), and a connection's
cursor wrappers are switched to it as they are made, so they keep the engine's exact
class hierarchy (``isinstance(cursor, CursorWrapper)``, PostgreSQL's ``copy()``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from time import perf_counter_ns
from typing import Any

from django.db.backends.utils import CursorWrapper

from tracer import recorder, sqlcomment
from tracer.trace import UNRECORDED, Statement, describe_error

_FETCHES = ("fetchone", "fetchmany", "fetchall")

# The innermost explicit trace: read first, before active_trace() (a call).
_current_trace = recorder._current.get


class TracedCursorMixin:
    """Records execute, executemany, callproc, fetches and iteration.

    Recording happens in ``_execute``/``_executemany``, inside the connection's
    ``execute_wrappers``: what is recorded is the SQL the driver receives.
    """

    cursor: Any
    db: Any
    # The statement later fetches on this cursor belong to (None: not recording).
    _tracer_statement: Statement | None = None
    # Whether the wrapped class defines fetch methods itself (else __getattr__ does).
    _tracer_native_fetch = False
    # The wrapped class's own _execute/_executemany, bound at class creation: a
    # plain attribute lookup per statement instead of super().
    _tracer_execute: Callable[..., Any]
    _tracer_executemany: Callable[..., Any]

    def _execute(self, sql: Any, params: Any, *wrapper_args: Any) -> Any:
        trace = (_current_trace() or recorder.active_trace()) if recorder.tracing else None
        if trace is None:
            self._tracer_statement = None
            return self._tracer_execute(sql, params, *wrapper_args)
        return self._tracer_record(
            trace, "execute", self._tracer_execute, sql, params, params, wrapper_args
        )

    def _executemany(self, sql: Any, param_list: Any, *wrapper_args: Any) -> Any:
        trace = (_current_trace() or recorder.active_trace()) if recorder.tracing else None
        if trace is None:
            self._tracer_statement = None
            return self._tracer_executemany(sql, param_list, *wrapper_args)
        # A generator param_list is the driver's to consume: keep lists only.
        kept = param_list if isinstance(param_list, (list, tuple)) else UNRECORDED
        return self._tracer_record(
            trace, "executemany", self._tracer_executemany, sql, param_list, kept, wrapper_args
        )

    def callproc(self, procname: Any, params: Any = None, kparams: Any = None) -> Any:
        trace = (_current_trace() or recorder.active_trace()) if recorder.tracing else None
        if trace is None:
            self._tracer_statement = None
            return super().callproc(procname, params, kparams)  # type: ignore[misc]
        call = super().callproc  # type: ignore[misc]
        return self._tracer_record(
            trace,
            "callproc",
            lambda name, args: call(name, args, kparams),
            procname,
            params,
            params if kparams is None else (params, kparams),
            (),
        )

    def _tracer_record(
        self,
        trace: Any,
        kind: str,
        call: Callable[..., Any],
        sql: Any,
        params: Any,
        kept_params: Any,
        wrapper_args: tuple[Any, ...],
    ) -> Any:
        try:
            statement: Statement | None = recorder.begin_statement(
                trace, self.db, kind, sql, kept_params
            )
        except Exception:
            recorder.note_failure()
            statement = None
        self._tracer_statement = statement
        if statement is None:
            return call(sql, params, *wrapper_args)
        if sqlcomment.on is not False:
            try:
                sql = sqlcomment.commented(sql, params, statement)
            except Exception:  # send the SQL as the user's code gave it
                recorder.note_failure()
        start = perf_counter_ns()
        try:
            result = call(sql, params, *wrapper_args)
        except BaseException as exc:
            failed(statement, start, exc)
            raise
        # As done(), inline: this runs for every recorded statement.
        statement.duration_ns = perf_counter_ns() - start
        statement.start_ns = start
        try:
            statement.rowcount = self.cursor.rowcount
        except Exception:
            recorder.note_failure()
        if recorder.log_statements:
            recorder.statement_done(statement)
        return result

    # Fetches take a fast path when nothing records (one frame, as plain Django), and
    # fetchone and fetchmany (the ORM's) record inline.

    def fetchone(self) -> Any:
        if self._tracer_native_fetch:
            return self._tracer_fetch("fetchone", ())
        statement = self._tracer_statement
        if statement is None:
            with self.db.wrap_database_errors:
                return self.cursor.fetchone()
        start = perf_counter_ns()
        try:
            with self.db.wrap_database_errors:
                row = self.cursor.fetchone()
        except BaseException as exc:
            _fetch_raised(statement, start, exc)
            raise
        statement.fetch_ns += perf_counter_ns() - start
        statement.fetch_calls += 1
        statement.rows_fetched += row is not None
        return row

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        if self._tracer_native_fetch:
            return self._tracer_fetch("fetchmany", args, kwargs)
        statement = self._tracer_statement
        if statement is None:
            with self.db.wrap_database_errors:
                return self.cursor.fetchmany(*args, **kwargs)
        start = perf_counter_ns()
        try:
            with self.db.wrap_database_errors:
                rows = self.cursor.fetchmany(*args, **kwargs)
        except BaseException as exc:
            _fetch_raised(statement, start, exc)
            raise
        statement.fetch_ns += perf_counter_ns() - start
        statement.fetch_calls += 1
        try:
            statement.rows_fetched += len(rows)
        except Exception:
            recorder.note_failure()
        return rows

    def fetchall(self) -> Any:
        if self._tracer_statement is None and not self._tracer_native_fetch:
            with self.db.wrap_database_errors:
                return self.cursor.fetchall()
        return self._tracer_fetch("fetchall", ())

    def _tracer_fetch(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
    ) -> Any:
        statement = self._tracer_statement
        if statement is None:  # not recording; the wrapped class fetches itself
            method = getattr(super(), name)
            return method(*args, **kwargs) if kwargs else method(*args)
        start = perf_counter_ns()
        try:
            if self._tracer_native_fetch:
                method = getattr(super(), name)
                result = method(*args, **kwargs) if kwargs else method(*args)
            else:
                # As CursorWrapper's own fetches (via __getattr__), minus a closure.
                with self.db.wrap_database_errors:
                    fetch = getattr(self.cursor, name)
                    result = fetch(*args, **kwargs) if kwargs else fetch(*args)
        except BaseException as exc:
            # A row computed as it is fetched failed (SQLite, server-side cursors):
            # the statement failed, after the rows fetched before.
            fetch_failed(statement, exc)
            raise
        finally:
            statement.fetch_ns += perf_counter_ns() - start
            statement.fetch_calls += 1
        try:
            if name == "fetchone":
                statement.rows_fetched += result is not None
            else:
                statement.rows_fetched += len(result)
        except Exception:
            recorder.note_failure()
        return result

    def __iter__(self) -> Iterator[Any]:
        rows = super().__iter__()  # type: ignore[misc]
        statement = self._tracer_statement
        if statement is None:
            return rows
        return _counted(rows, statement)


def _counted(rows: Iterator[Any], statement: Statement) -> Iterator[Any]:
    # Totals are updated row by row so an iteration abandoned half-way still counts.
    statement.fetch_calls += 1
    while True:
        start = perf_counter_ns()
        try:
            row = next(rows)
        except StopIteration:
            statement.fetch_ns += perf_counter_ns() - start
            return
        except BaseException as exc:
            statement.fetch_ns += perf_counter_ns() - start
            fetch_failed(statement, exc)
            raise
        statement.fetch_ns += perf_counter_ns() - start
        statement.rows_fetched += 1
        yield row


def done(statement: Statement, start: int, cursor: Any = None) -> None:
    """Stamp a statement that returned; ``cursor`` gives its row count, if any."""
    end = perf_counter_ns()
    try:
        statement.start_ns = start
        statement.duration_ns = end - start
        if cursor is not None:
            statement.rowcount = cursor.rowcount
    except Exception:
        recorder.note_failure()
    if recorder.log_statements:
        recorder.statement_done(statement)


def failed(statement: Statement, start: int, exc: BaseException) -> None:
    end = perf_counter_ns()
    try:
        statement.start_ns = start
        statement.duration_ns = end - start
        statement.error = describe_error(exc)
    except Exception:
        recorder.note_failure()
    if recorder.log_statements:
        recorder.statement_done(statement)


def _fetch_raised(statement: Statement, start: int, exc: BaseException) -> None:
    statement.fetch_ns += perf_counter_ns() - start
    statement.fetch_calls += 1
    # A row computed as it is fetched failed (SQLite, server-side cursors): the
    # statement failed, after the rows fetched before.
    fetch_failed(statement, exc)


def fetch_failed(statement: Statement, exc: BaseException) -> None:
    """Mark a statement whose fetch raised, unless its execute already failed."""
    if statement.error is not None:
        return
    try:
        statement.error = describe_error(exc)
    except Exception:
        recorder.note_failure()


_classes: dict[type, type] = {}
_lock = threading.Lock()


def traced_cursor_class(wrapper_class: type[CursorWrapper]) -> type:
    """The traced subclass of an engine's cursor wrapper class (built once)."""
    try:
        return _classes[wrapper_class]
    except KeyError:
        pass
    with _lock:
        if wrapper_class not in _classes:
            native = any(
                name in vars(klass)
                for klass in wrapper_class.__mro__
                if klass is not CursorWrapper
                for name in _FETCHES
            )
            metaclass: Any = type(wrapper_class)
            _classes[wrapper_class] = metaclass(
                wrapper_class.__name__,
                (TracedCursorMixin, wrapper_class),
                {
                    "__module__": __name__,
                    "__qualname__": wrapper_class.__qualname__,
                    "_tracer_native_fetch": native,
                    "_tracer_execute": wrapper_class._execute,
                    "_tracer_executemany": wrapper_class._executemany,
                },
            )
    return _classes[wrapper_class]


def direct_make_cursor() -> Callable[[Any, Any], Any]:
    """A ``make_cursor`` for engines whose own is Django's (``CursorWrapper(cursor,
    self)``): it builds the traced class directly instead of switching the class of
    the engine's."""
    traced = traced_cursor_class(CursorWrapper)

    def make_cursor(self: Any, cursor: Any) -> Any:
        return traced(cursor, self)

    return make_cursor


_untraceable: set[type] = set()


def trace_cursor(wrapper: Any) -> Any:
    """Switch a cursor wrapper made by the engine to its traced class."""
    klass = type(wrapper)
    if isinstance(wrapper, CursorWrapper):
        if not isinstance(wrapper, TracedCursorMixin):
            wrapper.__class__ = traced_cursor_class(klass)
    elif klass not in _untraceable:
        _untraceable.add(klass)
        recorder.logger.warning(
            "tracer cannot record through %s.%s: it does not derive from Django's "
            "CursorWrapper. Its statements are not recorded.",
            klass.__module__,
            klass.__qualname__,
        )
    return wrapper
