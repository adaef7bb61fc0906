"""A statement's six stages, and traces as JSON (``"format": "tracer-trace/1"``).

Everything here runs when someone looks (a page, an export), never while recording:
code objects are resolved to files and lines, lineages rendered as code, params
made JSON-safe. The format is documented in docs/trace-format.md.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections import OrderedDict
from typing import Any

from django.db.models.query import QuerySet

from tracer import stacks
from tracer.guard import no_queries
from tracer.sqldisplay import MASK, is_secret, redact_literals, redacted_params
from tracer.trace import (
    SAME_AS_STATEMENT,
    Call,
    Compile,
    Event,
    Manager,
    Operation,
    Statement,
    Trace,
)

FORMAT = "tracer-trace/1"
STAGES = ("model", "manager", "queryset", "query", "compiler", "backend")

_REPR_LIMIT = 200
#: Lists and dicts nested deeper than this in a value are written as their repr (a
#: list that holds itself would never end).
VALUE_DEPTH = 20


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 6)


def _path(cls: Any) -> str | None:
    return None if cls is None else f"{cls.__module__}.{cls.__qualname__}"


def _label(model: Any) -> str | None:
    return None if model is None else model._meta.label


def value(obj: Any, depth: int = 0) -> Any:
    """A JSON-safe form of a param or argument: JSON scalars as they are, lists and
    tuples as lists, anything else as ``{"type": ..., "repr": ...}`` (also NaN and
    infinite floats, which JSON has no literal for, strings that are not Unicode
    text (lone surrogates, which no page or UTF-8 file can hold), and lists and dicts
    nested more than ``VALUE_DEPTH`` levels deep)."""
    if obj is None or isinstance(obj, (bool, int)) or isinstance(obj, str) and _text(obj):
        return obj
    if isinstance(obj, float) and math.isfinite(obj):
        return obj
    if depth < VALUE_DEPTH:
        if isinstance(obj, (list, tuple)):
            return [value(item, depth + 1) for item in obj]
        if isinstance(obj, dict) and all(isinstance(key, str) and _text(key) for key in obj):
            return {key: value(item, depth + 1) for key, item in obj.items()}
    return {"type": _path(type(obj)), "repr": _repr(obj)}


_SURROGATE = re.compile("[\ud800-\udfff]")
# "<generator object f at 0x7f3b7ddd29b0>": the address differs from run to run and says
# nothing to a reader.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")


def _text(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (holds no lone surrogate)."""
    return text.isascii() or _SURROGATE.search(text) is None


def _repr(obj: Any) -> str:
    # Only called inside to_dict's no_queries(): a repr() that queries (a model's
    # __repr__ reading a relation) is stopped and shown as unrepresentable.
    try:
        text = _queryset_repr(obj) if isinstance(obj, QuerySet) else repr(obj)
    except Exception as exc:
        text = f"<unrepresentable {type(obj).__name__}: {exc}>"
    if " at 0x" in text:
        text = _ADDRESS.sub(">", text)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _queryset_repr(queryset: QuerySet[Any]) -> str:
    """A QuerySet as ``<QuerySet of demo_app.Book>``: its own repr() would run it."""
    model = queryset.model
    return f"<{type(queryset).__name__} of {model._meta.label if model else '?'}>"


def _frame(frame: stacks.Frame | None) -> dict[str, Any] | None:
    if frame is None:
        return None
    return {
        "file": frame.filename,
        "line": frame.lineno,
        "function": frame.function,
        "source": frame.source,
    }


def _stack(stack: Any) -> list[dict[str, Any]]:
    return [_frame(frame) for frame in stacks.resolve(stack)]  # type: ignore[misc]


def _template(template: tuple[str, int] | None) -> dict[str, Any] | None:
    return None if template is None else {"name": template[0], "line": template[1]}


# Lineage as code ---------------------------------------------------------------------


def _calls(lineage: Call | Manager | None) -> tuple[Manager | None, list[Call]]:
    calls: list[Call] = []
    node: Any = lineage
    while isinstance(node, Call):
        calls.append(node)
        node = node.parent
    calls.reverse()
    return (node if isinstance(node, Manager) else None), calls


def _root(manager: Manager | None, operation: Operation) -> str:
    if manager is None:
        model = getattr(operation.model, "__name__", "?")
        queryset = getattr(operation.queryset_class, "__name__", "QuerySet")
        return f"{queryset}({model})"
    if manager.related is not None:
        label, accessor, _pk = manager.related
        return f"{label.rsplit('.', 1)[-1].lower()}.{accessor}"
    return f"{getattr(manager.model, '__name__', '?')}.{manager.name}"


_OPERATORS = {"__and__": "&", "__or__": "|", "__xor__": "^"}


def call_code(call: Call) -> str:
    """One call as code: ``.filter(price__lt=10)``, ``[:50]``, `` | <QuerySet>``."""
    if call.name == "__getitem__":
        key = call.args[0]
        if isinstance(key, slice):
            start = "" if key.start is None else repr(key.start)
            stop = "" if key.stop is None else repr(key.stop)
            step = "" if key.step is None else f":{key.step!r}"
            return f"[{start}:{stop}{step}]"
        return f"[{key!r}]"
    if call.name in _OPERATORS:
        other = call.args[0] if call.args else None
        return f" {_OPERATORS[call.name]} <{type(other).__name__}>"
    parts = [_repr(arg) for arg in call.args]
    kwargs = call.kwargs or ()
    parts += [
        f"{kwargs[i]}={MASK_REPR if _secret_name(kwargs[i]) else _repr(kwargs[i + 1])}"
        for i in range(0, len(kwargs), 2)
    ]
    return f".{call.name}({', '.join(parts)})"


MASK_REPR = repr(MASK)


def _secret_name(name: Any) -> bool:
    """Whether a keyword argument (``password``, ``user__api_key__in``) names a
    secret-looking column, whose value is masked in the code shown."""
    try:
        return isinstance(name, str) and is_secret(name)
    except Exception:  # an invalid TRACER setting: mask rather than show
        return True


def lineage_code(operation: Operation) -> str:
    """The QuerySet as code, e.g. ``Book.objects.filter(price__lt=10)[:50]``, with
    the triggering call if it has one (``.get(pk=1)``)."""
    manager, calls = _calls(operation.lineage)
    code = _root(manager, operation) + "".join(call_code(call) for call in calls)
    if operation.args is not None or operation.kwargs is not None:
        method = _METHODS.get(operation.trigger, operation.trigger)
        call = Call(None, method, operation.args or (), operation.kwargs, None, 0, 0)
        code += call_code(call)
    return code


# Trigger names that are not the method's own name.
_METHODS = {"index": "__getitem__"}


# Stages ------------------------------------------------------------------------------


def stages(statement: Statement) -> dict[str, dict[str, Any] | None]:
    """The six stages of a statement; None marks a stage it did not go through."""
    operation = statement.operation
    compile = statement.compile
    raw_queryset = _raw_queryset(statement)
    own = owned(statement)
    model = compile.model if compile is not None else (operation.model if raw_queryset else None)  # type: ignore[union-attr]
    return {
        "model": _model_stage(model),
        "manager": _manager_stage(operation) if own else None,
        "queryset": _queryset_stage(operation) if own else None,  # type: ignore[arg-type]
        "query": _query_stage(compile, statement if raw_queryset else None),
        "compiler": _compiler_stage(compile),
        "backend": _backend_stage(statement, compile),
    }


def _raw_queryset(statement: Statement) -> bool:
    operation = statement.operation
    return (
        operation is not None
        and operation.queryset_class is not None
        and statement.compile is None
        and statement.kind == "execute"
        and operation.queryset_class.__name__ == "RawQuerySet"
    )


def owned(statement: Statement) -> bool:
    """Whether the statement is the SQL of its operation's QuerySet (which then gives
    its manager and queryset stages): a compiler made it from that QuerySet's model,
    or the QuerySet is raw."""
    operation = statement.operation
    compile = statement.compile
    return operation is not None and (
        _raw_queryset(statement) or (compile is not None and compile.model is operation.model)
    )


def build_ns(operation: Operation) -> int:
    """Time spent building the operation's QuerySet: its chained calls."""
    return sum(call.duration_ns for call in _calls(operation.lineage)[1])


def _model_stage(model: Any) -> dict[str, Any] | None:
    if model is None:
        return None
    return {"label": model._meta.label, "table": model._meta.db_table}


def _manager_stage(operation: Operation | None) -> dict[str, Any] | None:
    manager, _ = _calls(operation.lineage if operation else None)
    if manager is None:
        return None
    related = None
    if manager.related is not None:
        label, accessor, pk = manager.related
        related = {"instance": label, "accessor": accessor, "pk": value(pk)}
    return {"name": manager.name, "class": _path(manager.manager_class), "related": related}


def _queryset_stage(operation: Operation) -> dict[str, Any] | None:
    if operation.queryset_class is None:
        return None
    _, calls = _calls(operation.lineage)
    location = stacks.location(operation.stack)
    return {
        "class": _path(operation.queryset_class),
        "code": lineage_code(operation),
        "calls": [
            {
                "code": call_code(call),
                "location": _frame(stacks._frame(call.code, call.lasti)) if call.code else None,
                "duration_ms": _ms(call.duration_ns),
            }
            for call in calls
        ],
        "build_ms": _ms(build_ns(operation)),
        "trigger": operation.trigger,
        "trigger_detail": operation.detail,
        "trigger_location": _frame(location),
        "prefetch_lookups": [
            lookup
            if isinstance(lookup, str)
            else getattr(lookup, "prefetch_through", _repr(lookup))
            for lookup in operation.prefetch
        ],
    }


def _query_stage(compile: Compile | None, raw: Statement | None) -> dict[str, Any] | None:
    if compile is not None:
        return {"class": compile.query_class.__name__, "state": compile.query}
    if raw is not None:
        return {"class": "RawQuery", "state": _raw_state(raw)}
    return None


def _raw_state(statement: Statement) -> dict[str, Any]:
    """The querystate of a RawQuerySet's statement (no compiler described it): the
    same keys as ``querystate.describe()`` gives for a ``RawQuery``."""
    from django.db.models.sql.query import RawQuery

    from tracer.querystate import describe

    params = statement.params
    known = params is None or isinstance(params, (list, tuple, dict))
    state = describe(RawQuery(statement.sql, statement.alias, params if known else None))
    if not known:  # dropped past SOFT_CAP: their number is unknown
        state["params"] = None
    return state


def redacted(statement: Statement) -> Any:
    """A statement's params with the values of secret-looking columns masked
    (``TRACER["REDACT_COLUMNS"]``): what every display and export shows."""
    params = statement.params
    if statement.kind == "executemany" and isinstance(params, (list, tuple)):
        return [_redacted(statement.sql, row, statement.vendor) for row in params]
    return _redacted(statement.sql, params, statement.vendor)


def _sql(sql: Any, vendor: str | None) -> str:
    """SQL text as exported: literals of secret-looking columns masked (raw SQL
    built with values in it)."""
    if not isinstance(sql, str):
        return _repr(sql)
    if not _text(sql):  # the driver could not encode it either
        sql = sql.encode("utf-8", "backslashreplace").decode("utf-8")
    try:
        return redact_literals(sql, vendor=vendor)
    except Exception:
        return sql


def _redacted(sql: Any, params: Any, vendor: str | None) -> Any:
    if not isinstance(sql, str) or params is None or isinstance(params, str):
        return params
    try:
        return redacted_params(sql, params, vendor=vendor)
    except Exception:  # never show a value we could not check
        return [MASK] * len(params) if isinstance(params, (list, tuple)) else MASK


def _compiler_stage(compile: Compile | None) -> dict[str, Any] | None:
    if compile is None:
        return None
    produced = compile.sql
    if produced == SAME_AS_STATEMENT and compile.statement is not None:
        produced = (compile.statement.sql, compile.statement.params)
    vendor = compile.statement.vendor if compile.statement is not None else None
    if isinstance(produced, tuple):
        sql: Any = produced[0]
        params: Any = value(_redacted(sql, produced[1], vendor))
    elif isinstance(produced, list):
        sql = [item[0] for item in produced]
        params = [value(_redacted(item[0], item[1], vendor)) for item in produced]
    else:
        sql, params = None, None
    return {
        "class": _path(compile.compiler_class),
        "sql": sql,
        "params": params,
        "compile_ms": _ms(compile.compile_ns),
        "result_type": compile.result_type,
    }


def _backend_stage(statement: Statement, compile: Compile | None) -> dict[str, Any]:
    return {
        "alias": statement.alias,
        "vendor": statement.vendor,
        "execute_ms": _ms(statement.duration_ns),
        "fetch_ms": _ms(statement.fetch_ns),
        "fetch_calls": statement.fetch_calls,
        "rows_fetched": statement.rows_fetched,
        "rowcount": statement.rowcount,
        "convert_ms": _ms(compile.convert_ns) if compile is not None else None,
        "hydrate_ms": _ms(compile.hydrate_ns) if compile is not None else None,
        "iterable": _path(compile.iterable_class) if compile is not None else None,
        "error": _error(statement.error),
        "in_atomic_block": statement.in_atomic_block,
    }


def _error(error: tuple[str, str] | None) -> dict[str, str] | None:
    return None if error is None else {"type": error[0], "message": error[1]}


# Traces ------------------------------------------------------------------------------


#: Finished traces whose export is kept (``trace._exported``) at most: the most
#: recently exported. An export is several times the size of the trace it comes from
#: (about 6 KB a statement), and the stores bound the traces they keep, not exports:
#: kept on every trace a page showed, they would hold many times ``STORE_BYTES``.
EXPORTS_KEPT = 16

# id(trace) -> weak reference, least recently exported first.
_kept: OrderedDict[int, weakref.ref[Trace]] = OrderedDict()
_kept_lock = threading.Lock()


def to_dict(trace: Trace) -> dict[str, Any]:
    """The trace as JSON-safe data in the ``tracer-trace/1`` format.

    A finished trace's export is kept while it is one of the ``EXPORTS_KEPT`` most
    recently exported: calls meanwhile return the same dict (treat it as read-only).
    A trace loaded by ``from_dict`` always keeps the data it came from."""
    data = trace._exported
    if data is not None:
        if not trace.imported:
            _keep(trace)
        return data
    with no_queries():
        data = _export(trace)
    if trace.finished:
        trace._exported = data
        _keep(trace)
    return data


def _keep(trace: Trace) -> None:
    """Mark ``trace``'s export the most recent; drop the export of the least recent
    past ``EXPORTS_KEPT`` (it is made again if asked for)."""
    key = id(trace)
    with _kept_lock:
        ref = _kept.pop(key, None)
        if ref is None or ref() is not trace:  # a dead trace's id, reused
            ref = weakref.ref(trace)
        _kept[key] = ref
        while len(_kept) > EXPORTS_KEPT:
            _, oldest = _kept.popitem(last=False)
            dropped = oldest()
            if dropped is not None and not dropped.imported:
                dropped._exported = None


def _export(trace: Trace) -> dict[str, Any]:
    from tracer.findings import trace_findings

    origin = trace.start_ns
    operations = trace.operations
    index = {id(operation): position for position, operation in enumerate(operations)}
    return {
        "format": FORMAT,
        "id": trace.id,
        "label": trace.label,
        "started_at": trace.started_at,
        "duration_ms": _ms(trace.duration_ns),
        "db_ms": _ms(trace.db_ns),
        "request": trace.request,
        "dropped": dict(trace.dropped),
        "operations": [_operation_dict(operation, index, origin) for operation in operations],
        "events": [_event_dict(event, origin) for event in trace.events],
        "statements": [
            _statement_dict(statement, position, index, origin)
            for position, statement in enumerate(trace.statements)
        ],
        "findings": trace_findings(trace),
    }


def _operation_dict(operation: Operation, index: dict[int, int], origin: int) -> dict[str, Any]:
    parent = operation.parent
    return {
        "index": index[id(operation)],
        "parent": index.get(id(parent)) if parent is not None else None,
        "trigger": operation.trigger,
        "detail": operation.detail,
        "model": _label(operation.model),
        "queryset": _path(operation.queryset_class),
        "code": lineage_code(operation) if operation.queryset_class is not None else None,
        "location": _frame(stacks.location(operation.stack)),
        "stack": _stack(operation.stack),
        "template": _template(operation.template),
        "start_ms": _ms(operation.start_ns - origin),
        "duration_ms": _ms(operation.duration_ns),
        "error": _error(operation.error),
        "loaded_by": _loaded_by(operation.loaded_by, index),
        "instance_pk": value(operation.instance_pk),
    }


def _loaded_by(operation: Operation | None, index: dict[int, int]) -> int | None:
    return None if operation is None else index.get(id(operation))


def _event_dict(event: Event, origin: int) -> dict[str, Any]:
    return {
        "alias": event.alias,
        "vendor": event.vendor,
        "kind": event.kind,
        "start_ms": _ms(event.start_ns - origin),
        "duration_ms": _ms(event.duration_ns),
        "error": _error(event.error),
    }


def _statement_dict(
    statement: Statement, position: int, index: dict[int, int], origin: int
) -> dict[str, Any]:
    operation = statement.operation
    stack = statement.stack if operation is None else operation.stack
    template = statement.template if operation is None else operation.template
    return {
        "index": position,
        "operation": index.get(id(operation)) if operation is not None else None,
        "alias": statement.alias,
        "vendor": statement.vendor,
        "kind": statement.kind,
        "sql": _sql(statement.sql, statement.vendor),
        "params": value(redacted(statement)),
        "start_ms": _ms(statement.start_ns - origin) if statement.start_ns else None,
        "location": _frame(stacks.location(stack)),
        "stack": _stack(stack),
        "template": _template(template),
        "stages": stages(statement),
    }


def from_dict(data: dict[str, Any]) -> Trace:
    """A trace loaded from ``to_dict()`` output. It carries the exported data (its
    ``to_dict()`` returns it unchanged) and plain statements for listing.

    Raises ValueError, saying what is wrong and where, on any other data."""
    if not isinstance(data, dict):
        raise ValueError(f"Not a {FORMAT} trace: expected a dict, got {type(data).__name__}.")
    if data.get("format") != FORMAT:
        raise ValueError(f"Not a {FORMAT} trace (format: {data.get('format')!r}).")
    try:
        _check_depth(data)
        return _load(data)
    except (_Malformed, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"Malformed {FORMAT} trace: {_problem(exc)}") from exc


class _Malformed(Exception):
    pass


def _problem(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, _Malformed) else f"{type(exc).__name__}: {exc}"


#: The deepest nesting of lists and dicts a loaded trace may have: an export's goes
#: about 10 levels below its Query states' WHERE trees (at most querystate.MAX_DEPTH
#: levels, two each); the pages that show a trace recurse through it.
LOAD_DEPTH = 100


def _check_depth(data: Any) -> None:
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > LOAD_DEPTH:
            raise _Malformed(f"it is nested more than {LOAD_DEPTH} levels deep.")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _field(mapping: Any, key: str, where: str, kind: type | tuple[type, ...] = object) -> Any:
    if not isinstance(mapping, dict):
        raise _Malformed(f"{where} is a {type(mapping).__name__}, not a dict.")
    if key not in mapping:
        raise _Malformed(f"{where} has no {key!r} key.")
    found = mapping[key]
    if not isinstance(found, kind):
        raise _Malformed(f"{where}[{key!r}] is a {type(found).__name__}: {found!r}.")
    return found


def _optional(mapping: dict[str, Any], key: str, where: str, kind: Any) -> Any:
    """``mapping[key]`` if present and not None, checked to be a ``kind``."""
    found = mapping.get(key)
    if found is not None and not isinstance(found, kind):
        raise _Malformed(f"{where}[{key!r}] is a {type(found).__name__}: {found!r:.80}.")
    return found


def _load(data: dict[str, Any]) -> Trace:
    number = (int, float)
    # What the list of traces reads (findings.summary) is checked here: one bad file
    # must not break the list.
    trace = Trace(_optional(data, "label", "the trace", str) or "")
    trace._id = _field(data, "id", "the trace", str)
    trace.started_at = _field(data, "started_at", "the trace", number)
    duration_ms = _optional(data, "duration_ms", "the trace", number)
    _optional(data, "db_ms", "the trace", number)
    trace.end_ns = trace.start_ns + round((duration_ms or 0) * 1e6)
    request = _optional(data, "request", "the trace", dict)
    if request is not None:
        for key in ("method", "path", "view"):
            _optional(request, key, "the trace['request']", str)
        _optional(request, "status", "the trace['request']", int)
    trace.request = request
    dropped = _optional(data, "dropped", "the trace", dict) or {}
    for key in dropped:
        _field(dropped, key, "the trace['dropped']", int)
    trace.dropped = dict(dropped)
    findings = _optional(data, "findings", "the trace", dict) or {}
    for key in ("n_plus_ones", "duplicates", "slow"):
        _optional(findings, key, "the trace['findings']", list)
    for key in ("operations", "events"):
        _field(data, key, "the trace", list)
    for position, item in enumerate(_field(data, "statements", "the trace", list)):
        where = f"statements[{position}]"
        stages = _field(item, "stages", where, dict)
        for name in STAGES:
            _optional(stages, name, f"{where}['stages']", dict)
        backend = _field(stages, "backend", f"{where}['stages']", dict)
        where_backend = f"{where}['stages']['backend']"
        statement = Statement(
            _field(item, "alias", where, str),
            _field(item, "vendor", where, str),
            _field(item, "kind", where, str),
            _field(item, "sql", where),
            _field(item, "params", where),
            _field(backend, "in_atomic_block", where_backend, bool),
        )
        execute_ms = _field(backend, "execute_ms", where_backend, (*number, type(None)))
        if execute_ms is not None:
            statement.duration_ns = round(execute_ms * 1e6)
        fetch_ms = _field(backend, "fetch_ms", where_backend, (*number, type(None)))
        statement.fetch_ns = round((fetch_ms or 0) * 1e6)
        statement.fetch_calls = _field(backend, "fetch_calls", where_backend, int)
        statement.rows_fetched = _field(backend, "rows_fetched", where_backend, int)
        statement.rowcount = _field(backend, "rowcount", where_backend, (int, type(None)))
        error = _field(backend, "error", where_backend, (dict, type(None)))
        if error is not None:
            where_error = f"{where_backend}['error']"
            statement.error = (
                _field(error, "type", where_error, str),
                _field(error, "message", where_error, str),
            )
        trace.statements.append(statement)
    trace._exported = data
    trace.imported = True
    return trace
