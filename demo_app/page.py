"""What every pattern page does around its pattern: record it, and show what was recorded.

A pattern view runs its work inside ``recording(request)`` (``tracer.capture()``), so the
page shows exactly the statements of the pattern: not the page's own housekeeping
(opening the connection, deleting what a write page wrote). Then ``show()`` renders the
page from that trace.

The link to the tracer app: TracerMiddleware records each request in a trace of its own
(``request.tracer_trace``), and the pattern's capture, nested inside it, adds its
statements to it when it ends; the request's trace is the one the store keeps, at the
end of the request, so the page links to it. Without the middleware (or for a request
it did not sample) the pattern's capture is the outermost one, and the store keeps it
instead: the page links to that. Inside any other capture (a test's, say) the page's
trace goes to that capture, and the page has nothing to link to.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import get_template

import tracer
from tracer.findings import live_summary
from tracer.trace import Trace
from tracer.views import display


@contextmanager
def recording(request: HttpRequest) -> Iterator[Trace]:
    """Record the pattern's statements. The connection is opened first: on MySQL,
    opening one runs two statements of its own, which are not the pattern's."""
    connection.ensure_connection()
    outer = tracer.current_trace()
    with tracer.capture(f"{request.method} {request.path}") as trace:
        yield trace
    _remember_link(request, trace, outer)


@asynccontextmanager
async def arecording(request: HttpRequest) -> AsyncIterator[Trace]:
    """``recording()`` for an async view."""
    await sync_to_async(_connect)()
    outer = tracer.current_trace()
    with tracer.capture(f"{request.method} {request.path}") as trace:
        yield trace
    _remember_link(request, trace, outer)


def _connect() -> None:
    # Here, not in the event loop's thread: connections belong to the thread that
    # uses them, and the ORM's async methods run in this worker thread.
    connection.ensure_connection()


def _remember_link(request: HttpRequest, trace: Trace, outer: Trace | None) -> None:
    stored = getattr(request, "tracer_trace", None)
    if stored is None and outer is None:
        stored = trace  # the outermost capture: the store kept it
    request.demo_stored_trace = stored


def show(request: HttpRequest, trace: Trace, result: str) -> HttpResponse:
    """The pattern page: the pattern, what the tracer should show and what it recorded
    (summary, findings, statements), the code, and ``result`` (the HTML of what the
    pattern computed)."""
    from demo_app import patterns  # the registry imports the views, which import this

    pattern, version = patterns.version_of(request.resolver_match.url_name)
    data = trace.to_dict()
    summary = live_summary(trace)
    findings = display.findings(data)
    stored = getattr(request, "demo_stored_trace", None)
    context: dict[str, Any] = {
        "pattern": pattern,
        "version": version,
        "number": patterns.PATTERNS.index(pattern) + 1,
        "patterns_total": len(patterns.PATTERNS),
        "others": [link for link in patterns.links(pattern) if link[0] is not version],
        "trace": trace,
        "summary": summary,
        "split": display.time_split(summary),
        "findings": findings,
        "n_plus_ones": findings["n_plus_ones"],
        "as_expected": summary["statements"] == version.statements,
        "stored_trace_id": stored.id if stored is not None else None,
        "code": [_source(part) for part in (*version.code, version.view)],
        "template_source": _template_source(version.template) if version.template else "",
        "result": result,
    }
    return render(request, "demo_app/pattern.html", context)


def _source(code: Any) -> str:
    return inspect.getsource(code)


def _template_source(name: str) -> str:
    return str(get_template(name).template.source)
