"""OpenTelemetry export (the ``otel`` extra): each finished trace as spans.

With ``TRACER["OTEL"] = True``, every finished outermost trace (a request, a
``tracer.capture()`` block) is emitted through the global tracer provider: one span
per statement, named and described per OpenTelemetry's database semantic
conventions, with a child span for each stage that took time. Spans are made from
what was recorded, after the trace ends, by a background thread (``flush()`` waits
for it), with the recorded clocks as their start and end times: nothing here runs
while the statements do.

Statement spans are children of the span that is current when the trace ends (for a
``with`` block, the one current when it began): with
opentelemetry-instrumentation-django, the request's span. With no current span, a
span for the trace itself is their parent.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import re
import threading
from collections import deque
from typing import Any

from django.core.signals import setting_changed

from tracer import stacks
from tracer.trace import Statement, Trace

#: The instrumentation scope the spans are emitted under.
SCOPE = "tracer.otel"

# TRACER["OTEL"], read on first use; None means "not read yet".
_enabled: bool | None = None
_failed = False

logger = logging.getLogger("tracer")

# db.system.name per Django vendor (MariaDB is told apart by its server's version).
_SYSTEMS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "oracle": "oracle.db",
}

# Facts of the export's stages that are not span attributes: params are kept out,
# the SQL is db.query.text, nested values (the Query's state, frames) do not fit.
_LEFT_OUT = {
    ("query", "state"),
    ("queryset", "calls"),
    ("queryset", "trigger_location"),
    ("compiler", "sql"),
    ("compiler", "params"),
    ("backend", "error"),
}

# The first keyword of a statement, past comments and opening parentheses.
_KEYWORD = re.compile(r"(?:\s|/\*.*?\*/|--[^\n]*|\()*([A-Za-z]+)", re.DOTALL)


def installed() -> bool:
    """Whether opentelemetry-api can be imported."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False


def enabled() -> bool:
    """Whether ``TRACER["OTEL"]`` is on."""
    global _enabled
    if _enabled is None:
        from tracer.conf import get_config

        try:
            _enabled = get_config().otel
        except Exception:  # an invalid setting is reported by the system checks
            _enabled = False
    return _enabled


def finished(trace: Trace) -> None:
    """Called by the recorder with each finished outermost trace: hands it to the
    export thread, with the current span's context."""
    if _enabled is False or not enabled() or trace.imported or trace.end_ns is None:
        return
    _submit((trace, *_origin(trace)))


def export(trace: Trace) -> None:
    """Emit ``trace`` as spans now, in this thread, under the current span (or a span
    of its own)."""
    if trace.imported or trace.end_ns is None:
        return
    _emit(trace, *_origin(trace))


def _origin(trace: Trace) -> tuple[Any, dict[str, dict[str, Any]]]:
    """What the spans need from the thread that ran the trace: the current context if
    a span is current, and what each alias's connection (this thread's) knows."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace as api

    valid = api.get_current_span().get_span_context().is_valid
    places = {
        alias: _place(alias, vendor)
        for alias, vendor in {(s.alias, s.vendor) for s in trace.statements}
    }
    return (otel_context.get_current() if valid else None), places


def flush(timeout: float | None = None) -> bool:
    """Wait until the export thread has emitted every trace handed to it; False if
    ``timeout`` (seconds) ran out first."""
    with _wake:
        return _wake.wait_for(lambda: not _pending, timeout)


def dropped() -> int:
    """Traces not exported because MAX_PENDING were already waiting."""
    return _dropped


# The export thread -------------------------------------------------------------------
#
# Making spans costs the SDK some 15 us each, more with attributes: tens of spans per
# request are better made after the response than before it. One daemon thread per
# process (started again in a forked child), fed through a bounded queue, emptied at
# exit before the SDK's own exit handler (registered earlier, so run later) shuts the
# provider down.

#: Finished traces waiting for the export thread at most; more are dropped (counted).
MAX_PENDING = 1000

_pending: deque[tuple[Trace, Any, dict[str, dict[str, Any]]]] = deque()
_wake = threading.Condition()
_thread: threading.Thread | None = None
_dropped = 0
_at_exit = False


def _submit(item: tuple[Trace, Any, dict[str, dict[str, Any]]]) -> None:
    global _thread, _dropped, _at_exit
    with _wake:
        if len(_pending) >= MAX_PENDING:
            _dropped += 1
            return
        _pending.append(item)
        if _thread is None:
            if not _at_exit:
                _at_exit = True
                atexit.register(flush, 5)
            _thread = threading.Thread(target=_work, name="tracer-otel-export", daemon=True)
            _thread.start()
        _wake.notify_all()


def _forked() -> None:
    # A forked child has no export thread, and the parent's lock may have been held.
    global _pending, _wake, _thread
    _pending = deque()
    _wake = threading.Condition()
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _work() -> None:
    global _failed
    while True:
        with _wake:
            _wake.wait_for(lambda: bool(_pending))
            trace, parent, places = _pending[0]
        try:
            _emit(trace, parent, places)
        except Exception:
            if not _failed:
                _failed = True
                logger.exception(
                    "tracer could not export a trace to OpenTelemetry; later failures are "
                    "not logged."
                )
        with _wake:
            _pending.popleft()
            _wake.notify_all()


def _emit(trace: Trace, parent: Any, places: dict[str, dict[str, Any]]) -> None:
    from opentelemetry import trace as api
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tracer = api.get_tracer(SCOPE)
    # Epoch nanoseconds of a perf_counter_ns() reading of this trace.
    origin = round(trace.started_at * 1e9) - trace.start_ns
    root = None
    context = parent
    if parent is None:
        root = tracer.start_span(
            _trace_name(trace),
            kind=SpanKind.INTERNAL,
            attributes=_trace_attributes(trace),
            start_time=origin + trace.start_ns,
        )
        if not root.is_recording():
            return
        context = api.set_span_in_context(root)
    exported = trace._exported["statements"] if trace._exported is not None else None
    seen: set[int] = set()  # compiles and operations whose stage spans were emitted
    for index, statement in enumerate(trace.statements):
        if not statement.start_ns:
            continue
        if exported is not None:
            stages = exported[index]["stages"]
        else:
            stages = statement.stages
        name, attributes = _describe(trace, index, statement, stages, places[statement.alias])
        steps = _steps(statement, stages, seen)
        start = min(step[1] for step in steps)
        end = max(step[2] for step in steps)
        span = tracer.start_span(
            name,
            context=context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=origin + start,
        )
        if not span.is_recording():  # not sampled: neither are its siblings
            span.end()
            break
        error = stages["backend"]["error"]
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error["message"]))
        inside = api.set_span_in_context(span)
        for step_name, step_start, step_end, step_attributes in steps:
            child = tracer.start_span(
                step_name,
                context=inside,
                kind=SpanKind.INTERNAL,
                attributes=step_attributes,
                start_time=origin + step_start,
            )
            child.end(end_time=origin + step_end)
        span.end(end_time=origin + end)
    if root is not None:
        root.end(end_time=origin + (trace.end_ns or trace.start_ns))


def _trace_name(trace: Trace) -> str:
    request = trace.request
    if request is not None:
        view = request.get("view")
        return f"{request['method']} {view}" if view else str(request["method"])
    return trace.label or "tracer.capture"


def _trace_attributes(trace: Trace) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "tracer.trace.id": trace.id,
        "tracer.trace.label": trace.label,
        "tracer.trace.statements": len(trace.statements),
        "tracer.trace.db_ms": trace.db_ms,
    }
    for kind, count in trace.dropped.items():
        attributes[f"tracer.trace.dropped.{kind}"] = count
    request = trace.request
    if request is not None:
        attributes["http.request.method"] = request["method"]
        attributes["url.path"] = request["path"]
        if request.get("status") is not None:
            attributes["http.response.status_code"] = request["status"]
        if request.get("view"):
            attributes["tracer.request.view"] = request["view"]
    return attributes


def _describe(
    trace: Trace,
    index: int,
    statement: Statement,
    stages: dict[str, Any],
    place: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The statement span's name and attributes."""
    from tracer.sqldisplay import collapse, redact_literals

    attributes = dict(place)
    sql = statement.sql if isinstance(statement.sql, str) else repr(statement.sql)
    compiler = stages["compiler"]
    model = stages["model"]
    batch = (
        len(statement.params)
        if statement.kind == "executemany" and isinstance(statement.params, (list, tuple))
        else 0
    )
    prefix = "BATCH " if batch > 1 else ""
    if statement.kind == "callproc":
        attributes["db.stored_procedure.name"] = sql
        name = attributes["db.query.summary"] = f"CALL {sql}"
    elif compiler is not None:
        keyword = _operation_name(statement)
        table = model["table"] if model is not None else None
        attributes["db.operation.name"] = prefix + keyword
        # Django's SQL keeps values out as params: the text is parametrised.
        attributes["db.query.text"] = collapse(redact_literals(sql, vendor=statement.vendor))
        if table:
            attributes["db.collection.name"] = table
        name = f"{prefix}{keyword} {table}" if table else prefix + keyword
    else:
        # Raw SQL may have values written in: its text goes out with every literal
        # and placeholder as "?" (the fingerprint's normalized form).
        from tracer.analysis.fingerprint import normalize

        match = _KEYWORD.match(sql, 0, 2000)
        keyword = match.group(1).upper() if match else "SQL"
        name = attributes["db.query.summary"] = prefix + keyword
        if statement.kind != "transaction":
            attributes["db.query.text"] = collapse(normalize(sql, statement.vendor))
    if batch > 1:
        attributes["db.operation.batch.size"] = batch
    if statement.error is not None:
        attributes["error.type"] = statement.error[0]
    if statement.fetch_calls:
        attributes["db.response.returned_rows"] = statement.rows_fetched
    operation = statement.operation
    stack = statement.stack if operation is None else operation.stack
    template = statement.template if operation is None else operation.template
    frame = stacks.location(stack)
    if frame is not None:
        attributes["code.file.path"] = frame.filename
        attributes["code.function.name"] = frame.function
        if frame.lineno is not None:
            attributes["code.line.number"] = frame.lineno
    if template is not None:
        attributes["tracer.template.name"] = template[0]
        attributes["tracer.template.line"] = template[1]
    attributes["tracer.trace.id"] = trace.id
    attributes["tracer.statement.index"] = index
    attributes["tracer.statement.kind"] = statement.kind
    if operation is not None and operation.index >= 0:
        attributes["tracer.operation.index"] = operation.index
        attributes["tracer.operation.trigger"] = operation.trigger
    for stage, facts in stages.items():
        if facts is None:
            continue
        for key, value in facts.items():
            if value is None or (stage, key) in _LEFT_OUT:
                continue
            if isinstance(value, list):
                if not value or not all(isinstance(item, str) for item in value):
                    continue
            elif not isinstance(value, (str, bool, int, float)):
                continue
            attributes[f"tracer.{stage}.{key}"] = value
    return name, attributes


def _operation_name(statement: Statement) -> str:
    from django.db.models.sql import compiler

    klass = statement.compile.compiler_class  # type: ignore[union-attr]
    if issubclass(klass, compiler.SQLInsertCompiler):
        return "INSERT"
    if issubclass(klass, compiler.SQLUpdateCompiler):
        return "UPDATE"
    if issubclass(klass, compiler.SQLDeleteCompiler):
        return "DELETE"
    return "SELECT"


def _place(alias: str, vendor: str) -> dict[str, Any]:
    """db.system.name, db.namespace, server.address and server.port of an alias,
    from its connection's settings (the database named when it connected)."""
    system = _SYSTEMS.get(vendor, vendor.lower())
    place: dict[str, Any] = {"db.system.name": system}
    try:
        from django.db import connections

        settings = connections[alias].settings_dict
        if system == "mysql" and _mariadb(alias):
            place["db.system.name"] = "mariadb"
    except Exception:  # an alias Django does not know: __no_db__
        return place
    if settings.get("NAME"):
        place["db.namespace"] = str(settings["NAME"])
    if settings.get("HOST"):
        place["server.address"] = str(settings["HOST"])
        port = str(settings.get("PORT") or "")
        if port.isdigit():
            place["server.port"] = int(port)
    return place


def _mariadb(alias: str) -> bool:
    # Only what the connection already knows: asking the server would run a query.
    from django.db import connections

    data = connections[alias].__dict__.get("mysql_server_data")
    return data is not None and "mariadb" in str(data.get("version", "")).lower()


def _steps(
    statement: Statement, stages: dict[str, Any], seen: set[int]
) -> list[tuple[str, int, int, dict[str, Any]]]:
    """The stage spans of a statement: (name, start, end, attributes), in pipeline
    order, perf_counter_ns clocks.

    Execution is placed where it ran. The other stages have measured durations but
    no recorded start: the QuerySet's calls were made at their own times before its
    evaluation, fetching, converting and building results interleave row by row.
    They are laid end to end around the execution, in pipeline order.
    """
    execute_start = statement.start_ns
    execute_end = execute_start + (statement.duration_ns or 0)
    before: list[tuple[str, int, dict[str, Any]]] = []
    queryset, compiler = stages["queryset"], stages["compiler"]
    operation, compile = statement.operation, statement.compile
    if queryset is not None and operation is not None and id(operation) not in seen:
        seen.add(id(operation))
        build = _ns(queryset["build_ms"])
        if build:
            facts = {"tracer.stage": "queryset", "tracer.queryset.calls": len(queryset["calls"])}
            before.append(("queryset build", build, facts))
    if compiler is not None and compile is not None and id(compile) not in seen:
        seen.add(id(compile))
        as_sql = _ns(compiler["compile_ms"])
        if as_sql:
            before.append(("compiler as_sql", as_sql, {"tracer.stage": "compiler"}))
    steps: list[tuple[str, int, int, dict[str, Any]]] = []
    start = execute_start - sum(duration for _, duration, _ in before)
    for name, duration, facts in before:
        steps.append((name, start, start + duration, facts))
        start += duration
    backend = stages["backend"]
    steps.append(("backend execute", execute_start, execute_end, {"tracer.stage": "backend"}))
    end = execute_end
    fetched: dict[str, Any] = {"tracer.backend.fetch_calls": statement.fetch_calls}
    after = [
        ("backend fetch", statement.fetch_ns, fetched),
        ("backend convert", _ns(backend["convert_ms"]), {}),
        ("backend hydrate", _ns(backend["hydrate_ms"]), {}),
    ]
    last = compile is None or compile.statement is statement
    for name, duration, facts in after:
        if duration and (name == "backend fetch" or last):
            steps.append((name, end, end + duration, {"tracer.stage": "backend", **facts}))
            end += duration
    return steps


def _ns(ms: float | None) -> int:
    return 0 if ms is None else round(ms * 1e6)


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _enabled
    if setting == "TRACER":
        _enabled = None


setting_changed.connect(_reset)
