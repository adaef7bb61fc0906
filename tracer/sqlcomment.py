"""sqlcommenter comments on the SQL the database receives (``TRACER["SQL_COMMENTS"]``).

Each recorded statement is sent with a comment appended, in google's sqlcommenter
format (keys sorted, values URL-encoded and quoted)::

    SELECT ... /*controller='shop.views.book_list',file='shop%2Fviews.py%3A12',
    framework='django%3A5.2.1',route='books%2F',traceparent='00-...-...-01'*/

so that database-side tools (slow query logs, ``pg_stat_activity``, ``pg_stat_statements``
samples, MySQL's processlist) lead back to the code. ``file`` is the statement's call
site as the recorder captured it (relative to the working directory when under it),
``template`` the template line that ran it, ``controller`` and ``route`` the view and
URL pattern of the request (set by TracerMiddleware), ``traceparent``/``tracestate``
the OpenTelemetry span current when the statement ran, if any.

What the tracer records (``statement.sql``) stays the SQL your code sent, without the
comment. Left alone: statements that already hold a comment (the sqlcommenter spec
says so), transaction control (BEGIN, COMMIT, SAVEPOINT ...), ``executemany`` (MySQL's
driver only batches an insert whose SQL ends at its VALUES list) and ``callproc``.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

import django
from django.core.signals import setting_changed

from tracer import recorder
from tracer.trace import Statement

# TRACER["SQL_COMMENTS"], read on first use; None means "not read yet". The cursor
# reads it before calling commented(), so statements pay nothing when it is off.
on: bool | None = None

#: The request being served, while TracerMiddleware records one with comments on.
current_request: ContextVar[Any] = ContextVar("tracer_sql_comment_request", default=None)

_TRANSACTION = re.compile(
    r"\s*(?:BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|END|START\s+TRANSACTION)\b", re.IGNORECASE
)

_framework = ""
_root = ""
# (code object id, offset) -> (code object, encoded "file:line"); the code object is
# kept to tell a reused id apart.
_files: dict[tuple[int, int], tuple[Any, str]] = {}
# The last resolver match seen and its encoded controller and route, and the last
# span context and its encoded traceparent: both change once per request at most.
_last_match: tuple[Any, str, str] = (None, "", "")
_last_span: tuple[Any, str] = (None, "")
_otel: Any = None  # opentelemetry.trace, False if not installed, None if not looked up


def load() -> bool:
    """Read ``TRACER["SQL_COMMENTS"]`` (again after a settings change)."""
    global on
    from tracer.conf import get_config

    try:
        on = get_config().sql_comments
    except Exception:  # an invalid setting is reported by the system checks
        on = False
    return on


def commented(sql: Any, params: Any, statement: Statement) -> Any:
    """``sql`` with the comment appended, ``%`` doubled when ``params`` will be
    interpolated into it; ``sql`` itself when it is not to be commented."""
    if not (on if on is not None else load()):
        return sql
    if (
        not isinstance(sql, str)
        or "/*" in sql
        or "--" in sql
        or statement.kind != "execute"
        or _TRANSACTION.match(sql)
    ):
        return sql
    try:
        text = comment(statement)
    except Exception:
        recorder.note_failure()
        return sql
    if params is not None:
        # Drivers interpolate params with the % operator (or its rules): "%%" is "%".
        text = text.replace("%", "%%")
    end = len(sql.rstrip())
    if end and sql[end - 1] == ";":
        return f"{sql[: end - 1]} {text};"
    return f"{sql} {text}"


def comment(statement: Statement) -> str:
    """The comment for a statement, ``/*key='value',...*/``."""
    global _framework, _last_match
    if not _framework:
        _framework = _pair("framework", f"django:{django.get_version()}")
    pairs = []
    request = current_request.get()
    match = getattr(request, "resolver_match", None) if request is not None else None
    controller = route = ""
    if match is not None:
        cached = _last_match
        if cached[0] is not match:
            cached = (
                match,
                _pair("controller", match._func_path),
                _pair("route", match.route) if match.route else "",
            )
            _last_match = cached
        controller, route = cached[1], cached[2]
    if controller:
        pairs.append(controller)
    operation = statement.operation
    stack = statement.stack if operation is None else operation.stack
    if stack:
        pairs.append(_file(stack[0], stack[1]))
    pairs.append(_framework)
    if route:
        pairs.append(route)
    template = statement.template if operation is None else operation.template
    if template is not None:
        pairs.append(_pair("template", f"{template[0]}:{template[1]}"))
    traceparent = _traceparent()
    if traceparent:
        pairs.append(traceparent)
    return "/*" + ",".join(pairs) + "*/"


def _pair(key: str, value: str) -> str:
    # sqlcommenter: URL-encode, escape "'" with "\" (quote() leaves none), quote.
    encoded = quote(str(value), safe="").replace("'", "\\'")
    return f"{quote(key, safe='')}='{encoded}'"


def _file(code: Any, lasti: int) -> str:
    key = (id(code), lasti)
    known = _files.get(key)
    if known is not None and known[0] is code:
        return known[1]
    global _root
    from tracer.stacks import line_of

    if not _root:
        _root = os.path.join(os.getcwd(), "")
    path = code.co_filename
    if path.startswith(_root):
        path = path[len(_root) :]
    value = _pair("file", f"{path}:{line_of(code, lasti)}")
    if len(_files) > 10_000:  # code made at run time must not grow this forever
        _files.clear()
    _files[key] = (code, value)
    return value


def _traceparent() -> str:
    """``traceparent`` (and ``tracestate``) of the current OpenTelemetry span."""
    global _otel, _last_span
    if _otel is None:
        try:
            from opentelemetry import trace as otel_trace

            _otel = otel_trace
        except ImportError:
            _otel = False
    if _otel is False:
        return ""
    context = _otel.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    cached = _last_span
    if cached[0] is context:
        return cached[1]
    text = _pair(
        "traceparent",
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}",
    )
    state = context.trace_state.to_header() if context.trace_state else ""
    if state:
        text += "," + _pair("tracestate", state)
    _last_span = (context, text)
    return text


def _reset(*, setting: str, **kwargs: Any) -> None:
    global on
    if setting == "TRACER":
        on = None


setting_changed.connect(_reset)
