"""The entry point Django loads for ``ENGINE = "tracer.backend"``.

``DatabaseWrapper(settings_dict, alias)`` resolves the alias's ``WRAPPED_ENGINE`` and
returns an instance of a class derived from both this class and that engine's own
``DatabaseWrapper`` (built once per engine). Everything the engine defines (vendor,
features, operations, creation, introspection, schema editor, client, validation,
cursor classes) stays the engine's; this class only adds recording.
"""

from __future__ import annotations

import threading
from time import perf_counter_ns
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend

from tracer import engines, pipeline, recorder
from tracer.backend.creation import traced_creation_class
from tracer.backend.cursor import direct_make_cursor, done, failed, trace_cursor
from tracer.backend.operations import traced_operations_class
from tracer.trace import Event, describe_error


class DatabaseWrapper:
    """Base of every traced connection class; instantiating it picks the class.

    ``isinstance(connection, tracer.backend.base.DatabaseWrapper)`` tells whether a
    connection is traced; ``connection.wrapped_engine`` names the real engine.
    """

    wrapped_engine: str = ""
    #: The compiler call (``execute_sql``) running on this connection, which the
    #: statements it runs belong to (set by tracer.backend.compiler). Connections are
    #: per thread and per task, as the compile is.
    _tracer_compiling: Any = None

    # Attributes of BaseDatabaseWrapper used below, for type checkers.
    alias: str
    vendor: str
    connection: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is DatabaseWrapper:
            settings_dict = args[0] if args else kwargs["settings_dict"]
            alias = args[1] if len(args) > 1 else kwargs.get("alias", DEFAULT_DB_ALIAS)
            engine = engines.resolve(settings_dict, alias)
            try:
                cls = wrapper_class(engine)
            except ImproperlyConfigured as exc:
                raise engines.unloadable(alias, engine, exc).error() from exc
        # Not initialised here: Python then calls __init__ once, with the caller's
        # own arguments (PostGIS reads alias from kwargs). With no arguments this
        # is what copy.copy() needs.
        return super().__new__(cls)

    def make_cursor(self, cursor: Any) -> Any:
        return trace_cursor(super().make_cursor(cursor))  # type: ignore[misc]

    def make_debug_cursor(self, cursor: Any) -> Any:
        return trace_cursor(super().make_debug_cursor(cursor))  # type: ignore[misc]

    # Transactions made as driver calls rather than SQL text. They are recorded
    # as statements named like Django's own connection.queries names them.

    def _commit(self) -> Any:
        return self._tracer_transaction("COMMIT", super()._commit)  # type: ignore[misc]

    def _rollback(self) -> Any:
        return self._tracer_transaction("ROLLBACK", super()._rollback)  # type: ignore[misc]

    def _set_autocommit(self, autocommit: bool) -> Any:
        call = super()._set_autocommit  # type: ignore[misc]
        if autocommit:
            return self._tracer_event("autocommit on", call, autocommit)
        return self._tracer_transaction("BEGIN", call, autocommit)

    def _tracer_transaction(self, word: str, call: Any, *args: Any) -> Any:
        trace = recorder.active_trace() if recorder.tracing else None
        if trace is None or self.connection is None:
            return call(*args)
        return trace_call(trace, self, word, call, args)

    # Connection lifecycle.

    def connect(self) -> None:
        return self._tracer_event("connect", super().connect)  # type: ignore[misc]

    def _close(self) -> Any:
        if self.connection is None:
            return super()._close()  # type: ignore[misc]
        return self._tracer_event("close", super()._close)  # type: ignore[misc]

    def _tracer_event(self, kind: str, call: Any, *args: Any) -> Any:
        trace = recorder.active_trace() if recorder.tracing else None
        if trace is None:
            return call(*args)
        try:
            event = Event(self.alias, self.vendor, kind, perf_counter_ns())
            trace.events.append(event)
        except Exception:
            recorder.note_failure()
            return call(*args)
        try:
            return call(*args)
        except BaseException as exc:
            try:
                event.error = describe_error(exc)
            except Exception:  # never in the way of the driver's exception
                recorder.note_failure()
            raise
        finally:
            event.duration_ns = perf_counter_ns() - event.start_ns


def trace_call(trace: Any, db: Any, word: str, call: Any, args: tuple[Any, ...]) -> Any:
    """Record a transaction driver call (BEGIN, COMMIT, ROLLBACK) as a statement."""
    try:
        statement = recorder.begin_statement(trace, db, "transaction", word, None)
    except Exception:
        recorder.note_failure()
        statement = None
    if statement is None:
        return call(*args)
    start = perf_counter_ns()
    try:
        result = call(*args)
    except BaseException as exc:
        failed(statement, start, exc)
        raise
    done(statement, start)
    return result


_classes: dict[str, type] = {}
_lock = threading.Lock()


def wrapper_class(engine: str) -> type:
    """The traced DatabaseWrapper class for a wrapped engine (built once, cached)."""
    try:
        return _classes[engine]
    except KeyError:
        pass
    with _lock:
        if engine not in _classes:
            _classes[engine] = _build(engine)
    return _classes[engine]


def _build(engine: str) -> type:
    backend = load_backend(engine)
    base = backend.DatabaseWrapper
    if issubclass(base, DatabaseWrapper):
        raise ImproperlyConfigured(
            f"WRAPPED_ENGINE {engine!r} is tracer.backend itself; name the real engine."
        )
    namespace = {
        "__module__": __name__,
        "__qualname__": "DatabaseWrapper",
        "__doc__": base.__doc__,
        "wrapped_engine": engine,
        # A class attribute, never an instance patch: Django checks that
        # type(conn).creation_class is type(conn.creation).
        "creation_class": traced_creation_class(base.creation_class),
        "ops_class": traced_operations_class(base.ops_class),
    }
    if base.make_cursor is BaseDatabaseWrapper.make_cursor:
        namespace["make_cursor"] = direct_make_cursor()
    pipeline.install()
    return type(base)("DatabaseWrapper", (DatabaseWrapper, base), namespace)
