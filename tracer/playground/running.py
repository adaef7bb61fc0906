"""Running an expression: inside a transaction that is always rolled back, with a
time limit on each statement and a limit on the rows read, recorded by the tracer.

Only reads run: an expression ending in a write method (``update()``, ``delete()``,
``create()``, ``bulk_*``, ``get_or_create()``, ``update_or_create()``) is compiled and
never run, whatever is asked.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from dataclasses import dataclass, field
from itertools import islice
from time import perf_counter_ns
from typing import Any

from django.db import connections, transaction
from django.db.models import Model

import tracer
from tracer import trace as records
from tracer.analysis.explain import ExplainError, explain_statement, select_problem
from tracer.guard import no_queries
from tracer.pipeline import LINEAGE, shown
from tracer.playground.parser import Expression
from tracer.playground.timeouts import VENDORS, is_timeout, statement_timeout
from tracer.playground.unfold import Pipeline, unfold
from tracer.recorder import active_trace
from tracer.sqldisplay import MASK, is_secret

__all__ = ["ROW_LIMIT", "TIMEOUT_MS", "RunResult", "run"]

#: Rows read at most, by default.
ROW_LIMIT = 100
#: Milliseconds each statement may take at most, by default.
TIMEOUT_MS = 2000
#: Characters kept of a cell's text.
CELL_LENGTH = 200
#: Levels of select_related() objects whose fields become columns.
RELATED_DEPTH = 3


@dataclass
class RunResult:
    """What running an expression gave. ``ran`` is False for writes (never run)."""

    pipeline: Pipeline
    ran: bool
    #: The rows read (at most ``row_limit``), each a list of JSON-safe cells in the
    #: order of ``columns``; ``truncated`` when there were more.
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False
    #: The result of count(), exists(), contains() (JSON-safe), else None.
    value: Any = None
    #: ``{"type", "message"}`` if running raised; ``timed_out`` if a statement was
    #: stopped by the time limit.
    error: dict[str, str] | None = None
    timed_out: bool = False
    #: The trace of the run (``tracer-trace/1`` export) and per statement its SQL,
    #: rows and the time of each stage.
    trace: dict[str, Any] | None = None
    timings: list[dict[str, Any]] = field(default_factory=list)
    #: The plan of the first SELECT (tracer.analysis.plans.Plan.to_dict()), or why
    #: there is none.
    explain: dict[str, Any] | None = None
    explain_error: str | None = None
    run_ms: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline.to_dict(),
            "ran": self.ran,
            "columns": list(self.columns),
            "rows": [list(row) for row in self.rows],
            "truncated": self.truncated,
            "value": self.value,
            "error": self.error,
            "timed_out": self.timed_out,
            "trace": self.trace,
            "timings": list(self.timings),
            "explain": self.explain,
            "explain_error": self.explain_error,
            "run_ms": self.run_ms,
            "notes": list(self.notes),
        }


def run(
    expression: str | Expression,
    using: str = "default",
    *,
    row_limit: int = ROW_LIMIT,
    timeout_ms: int = TIMEOUT_MS,
    explain: bool = True,
    app: str | None = None,
) -> RunResult:
    """Unfold the expression, then (unless it writes) run it on ``using`` inside a
    transaction that is rolled back, each statement limited to ``timeout_ms``, at
    most ``row_limit`` rows read, recorded with ``tracer.capture()``; and EXPLAIN its
    first SELECT. Raises PlaygroundError if the expression is refused."""
    if row_limit < 1:
        raise ValueError("row_limit must be at least 1.")
    pipeline = unfold(expression, using, app=app)
    if pipeline.kind == "write":
        return RunResult(
            pipeline,
            ran=False,
            notes=[f"{pipeline.terminal['method']}() changes data: it is never run."],  # type: ignore[index]
        )
    connection = connections[using]
    if connection.vendor not in VENDORS:
        return RunResult(
            pipeline,
            ran=False,
            notes=[f"Running is offered on {', '.join(VENDORS)}, not on {connection.vendor}."],
        )
    parsed = pipeline.parsed
    assert parsed is not None
    result = RunResult(pipeline, ran=True)
    queryset = parsed.queryset.using(using)
    setattr(queryset, LINEAGE, _lineage(parsed))
    start = perf_counter_ns()
    with transaction.atomic(using=using):
        try:
            with statement_timeout(connection, timeout_ms):
                with tracer.capture(f"playground: {parsed.code}") as trace:
                    try:
                        _evaluate(result, queryset, parsed, row_limit)
                    except Exception as exc:
                        result.error = {"type": _path(type(exc)), "message": str(exc)}
                        result.timed_out = is_timeout(exc, connection.vendor)
                if explain and not result.timed_out:
                    _explain(result, trace)
        finally:
            # Set last: a transaction marked for rollback runs no more queries.
            transaction.set_rollback(True, using=using)
    result.run_ms = round((perf_counter_ns() - start) / 1e6, 6)
    if result.timed_out:
        result.notes.append(f"A statement was stopped after {timeout_ms} ms.")
    _typed_arguments(trace, parsed)
    with no_queries([using]):  # an argument's repr (a model's __str__) must not query
        result.trace = trace.to_dict()
    result.timings = _timings(result.trace)
    return result


def _evaluate(result: RunResult, queryset: Any, parsed: Expression, row_limit: int) -> None:
    terminal = parsed.terminal
    if terminal is None:
        query = queryset.query
        if query.high_mark is not None and query.high_mark - query.low_mark <= row_limit:
            items = list(queryset)
        else:
            # The statement as compiled (no LIMIT added); only the rows needed are read.
            rows = queryset.iterator(chunk_size=row_limit + 1)
            try:
                items = list(islice(rows, row_limit + 1))
            finally:
                rows.close()
            result.notes.append(f"Read with iterator(): the first {row_limit} rows at most.")
        _table(result, items, queryset, row_limit)
        return
    method = terminal.method
    if method == "__getitem__":
        found: Any = queryset[terminal.args[0]]
    else:
        found = getattr(queryset, method)(*terminal.args, **terminal.kwargs)
    if method in ("count", "exists", "contains"):
        result.value = found
        result.columns = [method]
        result.rows = [[_cell(found)]]
    elif method == "aggregate":
        result.columns = [str(name) for name in found]
        result.rows = [[_cell(found[name], name) for name in found]]
    elif method == "in_bulk":
        _table(result, list(found.values()), queryset, row_limit)
    else:
        _table(result, [found], queryset, row_limit)


# Rows -----------------------------------------------------------------------------------


def _table(result: RunResult, items: list[Any], queryset: Any, row_limit: int) -> None:
    result.truncated = len(items) > row_limit
    items = items[:row_limit]
    if not items:
        result.columns = _names(queryset)
        return
    first = items[0]
    if isinstance(first, Model):
        # Every row's: a row whose relation is NULL holds no object to take its
        # columns from, where a later row may.
        found: dict[str, tuple[str, ...]] = {}
        for item in items:
            for name, path in _instance_columns(item):
                found.setdefault(name, path)
        columns = list(found.items())
        result.columns = [name for name, _ in columns]
        result.rows = [
            [_cell(_read(item, path), name) for name, path in columns] for item in items
        ]
        _shown(items, columns)
    elif isinstance(first, dict):
        result.columns = [str(key) for key in first]
        result.rows = [[_cell(item.get(key), str(key)) for key in first] for item in items]
    elif isinstance(first, tuple):
        names = list(getattr(first, "_fields", ())) or _names(queryset)
        if len(names) != len(first):
            names = [str(position) for position in range(len(first))]
        result.columns = names
        result.rows = [
            [_cell(cell, name) for cell, name in zip(item, names, strict=False)] for item in items
        ]
    else:  # values_list(flat=True), dates()
        names = _names(queryset)
        name = names[0] if len(names) == 1 else "value"
        result.columns = [name]
        result.rows = [[_cell(item, name)] for item in items]


def _names(queryset: Any) -> list[str]:
    """Column names of a values()/values_list() QuerySet, as its iterable names them."""
    query = queryset.query
    names = [*query.extra_select, *query.values_select, *query.annotation_select]
    if names:
        return [str(name) for name in names]
    model = queryset.model
    return [field.attname for field in model._meta.concrete_fields]


def _instance_columns(
    instance: Model, prefix: str = "", depth: int = 0, above: tuple[Model, ...] = ()
) -> list[tuple[str, tuple[str, ...]]]:
    """(column name, attribute path) of what the instance holds: loaded fields (not
    deferred ones: reading those would query), annotations, and the fields of the
    objects select_related() loaded with it (not the way back: a reverse one-to-one's
    object caches the instance it was joined to)."""
    meta = instance._meta
    loaded = instance.__dict__
    columns: list[tuple[str, tuple[str, ...]]] = []
    fields = {concrete.attname for concrete in meta.concrete_fields}
    for concrete in meta.concrete_fields:
        if concrete.attname in loaded:
            columns.append((prefix + concrete.attname, (concrete.attname,)))
    for name in loaded:
        if name not in fields and not name.startswith("_") and _is_annotation(instance, name):
            columns.append((prefix + name, (name,)))
    if depth < RELATED_DEPTH:
        path_here = (*above, instance)
        for name, related in instance._state.fields_cache.items():
            if isinstance(related, Model) and not any(related is o for o in path_here):
                below = _instance_columns(related, f"{prefix}{name}.", depth + 1, path_here)
                for column, path in below:
                    columns.append((column, (name, *path)))
    return columns


def _is_annotation(instance: Model, name: str) -> bool:
    # Annotations are plain instance attributes; a model attribute of that name
    # (a method, a property) would be the model's own.
    return not hasattr(type(instance), name)


def _read(instance: Model, path: tuple[str, ...]) -> Any:
    target: Any = instance
    for name in path[:-1]:
        target = target._state.fields_cache.get(name)
        if target is None:
            return None
    return target.__dict__.get(path[-1])


def _shown(items: list[Model], columns: list[tuple[str, tuple[str, ...]]]) -> None:
    """The related objects the table shows were read, as code showing them would read
    them: their select_related paths (and single-valued prefetches) are not unused.
    The table reads them from the instances' caches, which the trace does not see."""
    trace = active_trace()
    if trace is None:
        return
    relations = {path[:-1] for _, path in columns if len(path) > 1}
    for item in items:
        for names in relations:
            shown(trace, item, names)


def _cell(cell: Any, column: str = "") -> Any:
    """A JSON-safe cell: JSON scalars as they are, dates, decimals and UUIDs as their
    text, anything else as its repr (shortened); secret-looking columns masked."""
    if column and is_secret(column.rsplit(".", 1)[-1]):
        return MASK if cell is not None else None
    text: Any
    if cell is None or isinstance(cell, (bool, int, str)):
        text = cell
    elif isinstance(cell, float):
        text = cell if cell == cell and cell not in (float("inf"), float("-inf")) else repr(cell)
    elif isinstance(
        cell, (decimal.Decimal, uuid.UUID, datetime.date, datetime.time, datetime.timedelta)
    ):
        text = str(cell)
    elif isinstance(cell, (bytes, bytearray, memoryview)):
        text = bytes(cell).hex()
    elif isinstance(cell, (list, tuple)):
        return [_cell(item) for item in cell]
    elif isinstance(cell, dict):
        return {str(key): _cell(item) for key, item in cell.items()}
    else:
        text = f"<{type(cell).__name__}>"
    if isinstance(text, str) and len(text) > CELL_LENGTH:
        text = text[: CELL_LENGTH - 3] + "..."
    return text


# The recording ---------------------------------------------------------------------------


class _Source:
    """An argument as typed in the expression: the trace's lineage shows it as code."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _lineage(parsed: Expression) -> records.Call | records.Manager:
    """The QuerySet's lineage as the tracer records it for code that builds one: the
    manager, then each call with its arguments (as typed) and build time."""
    node: records.Call | records.Manager = records.Manager(
        parsed.manager_name, type(parsed.manager), parsed.model
    )
    for call in parsed.calls:
        if call.method == "__getitem__":
            args: tuple[Any, ...] = call.args  # the slice itself
        elif call.method in ("__or__", "__and__", "__xor__"):
            args = call.args
        else:
            args = tuple(_Source(source) for source in call.arg_sources)
        kwargs = tuple(
            item for name, source in call.kwarg_sources for item in (name, _Source(source))
        )
        node = records.Call(node, call.method, args, kwargs or None, None, 0, call.duration_ns)
    return node


def _typed_arguments(trace: Any, parsed: Expression) -> None:
    """The ending call's arguments as typed, in the recorded operation (as its
    lineage has them): the export shows code, and never needs a QuerySet's repr."""
    terminal = parsed.terminal
    if terminal is None or terminal.method == "__getitem__":
        return
    for operation in trace.operations:
        if operation.parent is None and operation.trigger == terminal.method:
            operation.args = tuple(_Source(source) for source in terminal.arg_sources)
            operation.kwargs = (
                tuple(
                    item
                    for name, source in terminal.kwarg_sources
                    for item in (name, _Source(source))
                )
                or None
            )
            return


def _explain(result: RunResult, trace: Any) -> None:
    for statement in trace.statements:
        if statement.kind != "execute" or not isinstance(statement.sql, str):
            continue
        if statement.error is not None:
            result.explain_error = "The statement failed: it is not explained."
            return
        if select_problem(statement.sql, statement.vendor) is not None:
            continue
        try:
            result.explain = explain_statement(statement).to_dict()
        except ExplainError as exc:
            result.explain_error = str(exc)
        except Exception as exc:  # the database refused it
            result.explain_error = f"{type(exc).__name__}: {exc}"
        return
    result.explain_error = "No SELECT ran."


def _timings(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per statement of the export: its SQL, rows, and the time of each stage."""
    timings = []
    for statement in data["statements"]:
        stages = statement["stages"]
        queryset = stages.get("queryset") or {}
        compiler = stages.get("compiler") or {}
        backend = stages["backend"]
        timings.append(
            {
                "index": statement["index"],
                "sql": statement["sql"],
                "trigger": queryset.get("trigger"),
                "rows": backend["rows_fetched"],
                "build_ms": queryset.get("build_ms"),
                "compile_ms": compiler.get("compile_ms"),
                "execute_ms": backend["execute_ms"],
                "fetch_ms": backend["fetch_ms"],
                "convert_ms": backend["convert_ms"],
                "hydrate_ms": backend["hydrate_ms"],
                "error": backend["error"],
            }
        )
    return timings


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
