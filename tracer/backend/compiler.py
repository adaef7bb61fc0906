"""Traced compilers: the wrapped engine's own compiler classes with recording mixed in.

The traced connection's ``ops.compiler(name)`` returns a subclass of the engine's
compiler (built once per class). It records a ``Compile`` for each ``execute_sql()``
(the statements it runs point to it), times the ``as_sql()`` inside it, the row
converters, and, with ``tracer.pipeline``'s iterable hooks, the hydration of results.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from itertools import islice
from time import perf_counter_ns
from typing import Any

from tracer import recorder
from tracer.trace import Compile, Shape

# Rows converted per timed batch when all rows are already in memory.
_BATCH = 100

# (compiler class, Query class, model, SQL) -> Shape; shared by every compile of one SQL.
_shapes: dict[tuple[Any, ...], Shape] = {}
_SHAPES_MAX = 2048

# The innermost explicit trace: read first, before active_trace() (a call).
_current_trace = recorder._current.get


class TracedCompilerMixin:
    query: Any
    connection: Any
    # The compile being recorded by this compiler's execute_sql (None: not recording).
    _tracer_compile: Compile | None = None
    # Whether execute_sql returned all rows in memory (so converters can be batched).
    _tracer_whole = False
    # The wrapped class's own methods, bound at class creation.
    _tracer_real: type
    # execute_sql()'s default result_type ("multi" for SQLCompiler), if it has one.
    _tracer_result: str | None = None
    _tracer_execute_sql: Callable[..., Any]
    _tracer_as_sql: Callable[..., Any]
    _tracer_apply_converters: Callable[..., Any]

    def execute_sql(self, *args: Any, **kwargs: Any) -> Any:
        trace = (_current_trace() or recorder.active_trace()) if recorder.tracing else None
        if trace is None:
            return self._tracer_execute_sql(*args, **kwargs)
        result_type = args[0] if args else kwargs.get("result_type", self._tracer_result)
        # The shape is set by as_sql(), which every statement run here follows.
        record = Compile(None, result_type if type(result_type) is str else None)
        self._tracer_compile = record
        # The statements run now belong to it: the link is the connection's (a plain
        # attribute; a context variable costs more), restored as a context would be.
        connection = self.connection
        outer = connection._tracer_compiling
        connection._tracer_compiling = record
        try:
            result = self._tracer_execute_sql(*args, **kwargs)
        finally:
            connection._tracer_compiling = outer
            if record.shape is None:  # as_sql() raised or was never called
                self._tracer_no_shape(record)
        if type(result) is list and result_type == "multi":
            self._tracer_whole = True
        return result

    def _tracer_no_shape(self, record: Compile) -> None:
        try:
            record.shape = Shape(self._tracer_real, type(self.query), self.query.model)
        except Exception:
            recorder.note_failure()

    def as_sql(self, *args: Any, **kwargs: Any) -> Any:
        record = self._tracer_compile
        if record is None or record.compile_ns is not None:
            return self._tracer_as_sql(*args, **kwargs)
        start = perf_counter_ns()
        try:
            result = self._tracer_as_sql(*args, **kwargs)
        finally:
            record.compile_ns = perf_counter_ns() - start
        record.sql = result
        try:
            # _shape(), its cache hit inline.
            query = self.query
            if type(result) is tuple:
                shape = _shapes.get((self._tracer_real, type(query), query.model, result[0]))
                if shape is None:
                    shape = _shape(self._tracer_real, query, result)
            else:
                shape = _shape(self._tracer_real, query, result)
            record.shape = shape
        except Exception:
            recorder.note_failure()
        return result

    def apply_converters(self, rows: Any, converters: Any) -> Any:
        record = self._tracer_compile
        converted = self._tracer_apply_converters(rows, converters)
        if record is None:
            return converted
        if record.convert_ns is None:
            record.convert_ns = 0
        if self._tracer_whole:
            return _batches(converted, record)
        return _each(converted, record)


def _shape(compiler_class: type, query: Any, result: Any) -> Shape:
    if type(result) is tuple:
        sql: Any = result[0]
    else:  # inserts: one statement per batch; the same first SQL can cover other counts
        sql = (result[0][0] if result else "", len(result))
    model = query.model
    key = (compiler_class, type(query), model, sql)
    shape = _shapes.get(key)
    if shape is None:
        from tracer.querystate import describe

        shape = Shape(compiler_class, type(query), model, describe(query))
        if len(_shapes) >= _SHAPES_MAX:
            _shapes.clear()
        _shapes[key] = shape
    return shape


def _batches(rows: Iterator[Any], record: Compile) -> Iterator[Any]:
    # All rows are in memory: convert a batch at a time, timed, and hand the batch
    # on. A converter error still comes after the rows converted before it.
    total = 0
    try:
        while True:
            start = perf_counter_ns()
            batch: list[Any] = []
            try:
                batch.extend(islice(rows, _BATCH))
            except BaseException:
                total += perf_counter_ns() - start
                yield from batch
                raise
            total += perf_counter_ns() - start
            yield from batch
            if len(batch) < _BATCH:
                return
    finally:
        record.convert_ns = (record.convert_ns or 0) + total


def _each(rows: Iterator[Any], record: Compile) -> Iterator[Any]:
    # Chunked reads: rows are fetched as they are consumed, so time each row, minus
    # any fetching that pulling it caused.
    statement = record.statement
    total = 0
    try:
        while True:
            fetched = statement.fetch_ns if statement is not None else 0
            start = perf_counter_ns()
            try:
                row = next(rows)
            except StopIteration:
                return
            finally:
                elapsed = perf_counter_ns() - start
                if statement is not None:
                    elapsed -= statement.fetch_ns - fetched
                total += elapsed
            yield row
    finally:
        record.convert_ns = (record.convert_ns or 0) + total


def _default_result_type(compiler_class: Any) -> str | None:
    parameter = inspect.signature(compiler_class.execute_sql).parameters.get("result_type")
    if parameter is None or not isinstance(parameter.default, str):
        return None
    return parameter.default


_classes: dict[type, type] = {}
_lock = threading.Lock()


def traced_compiler_class(compiler_class: Any) -> type:
    """The traced subclass of an engine's compiler class (built once, cached)."""
    try:
        return _classes[compiler_class]
    except KeyError:
        pass
    with _lock:
        if compiler_class not in _classes:
            _classes[compiler_class] = type(compiler_class)(
                compiler_class.__name__,
                (TracedCompilerMixin, compiler_class),
                {
                    "__module__": __name__,
                    "__qualname__": compiler_class.__qualname__,
                    "_tracer_real": compiler_class,
                    "_tracer_result": _default_result_type(compiler_class),
                    "_tracer_execute_sql": compiler_class.execute_sql,
                    "_tracer_as_sql": compiler_class.as_sql,
                    "_tracer_apply_converters": compiler_class.apply_converters,
                },
            )
    return _classes[compiler_class]
