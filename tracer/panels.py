"""The django-debug-toolbar panel: add ``"tracer.panels.PipelinePanel"`` to
``DEBUG_TOOLBAR_PANELS``.

The toolbar renders a panel's content in a later request (``djdt:render_panel``), and
its history panel renders old requests, from the stats the panel recorded in the
toolbar's store (JSON) and nothing else: no request, no live objects. So
``generate_stats`` records, from the request's trace export, what the first view
shows (the summary, the findings, the first page of statement rows), and the content
is rendered from those with the tracer app's own fragments. The drawers and the later
pages come from the tracer app (``include("tracer.urls")``), which reads the trace from
the tracer's store.
"""

from __future__ import annotations

import functools
from contextlib import ExitStack
from inspect import iscoroutine
from typing import Any

from debug_toolbar.middleware import show_toolbar as toolbar_shown
from debug_toolbar.panels import Panel
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from tracer.middleware import TracerMiddleware, _begin, _end, is_tracer_request
from tracer.recorder import capture
from tracer.store import summary_of
from tracer.views import display
from tracer.views.traces import STATEMENTS_PAGE, _page

#: What the panel says for a request it did not record.
NOT_RECORDED = "The tracer does not record its own pages."


class PipelinePanel(Panel):
    """Each statement of the request with its pipeline, the N+1s and other findings
    first; drawers and further pages from the tracer app."""

    is_async = True
    title = "Query pipeline"
    template = "tracer/panel.html"

    @property
    def nav_subtitle(self) -> str:
        return subtitle(self.get_stats())

    @property
    def scripts(self) -> list[str]:
        return [*super().scripts, static("tracer/panel.js")]

    def process_request(self, request: HttpRequest) -> Any:
        """Record the request, unless TracerMiddleware does (one trace per request)."""
        if middleware_records() or is_tracer_request(request):
            return super().process_request(request)
        return self._recorded(request)

    def _recorded(self, request: HttpRequest) -> Any:
        # The trace is opened here and closed when the response is there: now, or in
        # the coroutine the toolbar awaits in the same task (so the context variable
        # set here is the one reset there).
        scope = ExitStack()
        trace = scope.enter_context(capture(f"{request.method} {request.path}"))
        facts = _begin(request, trace)
        try:
            response = self.get_response(request)
        except BaseException:
            _end(request, facts, None)
            scope.close()
            raise
        if iscoroutine(response):
            return self._arecorded(request, response, facts, scope)
        _end(request, facts, response)
        scope.close()
        return response

    async def _arecorded(
        self, request: HttpRequest, pending: Any, facts: dict[str, Any], scope: ExitStack
    ) -> HttpResponseBase:
        with scope:
            try:
                response = await pending
            except BaseException:
                _end(request, facts, None)
                raise
            _end(request, facts, response)
        return response

    def generate_stats(self, request: HttpRequest, response: HttpResponseBase) -> None:
        self.record_stats(stats(request, response))

    @property
    def content(self) -> str:
        return render_to_string(self.template, context(self.get_stats()))


def show_toolbar(request: HttpRequest) -> bool:
    """A ``SHOW_TOOLBAR_CALLBACK``: the toolbar's own rule (DEBUG, INTERNAL_IPS), but
    not on the tracer app's pages. Its drawers and lists are requests too: left to the
    toolbar, each would push the page's own request out of its history, and with
    ``UPDATE_ON_FETCH`` switch the toolbar to it."""
    return bool(toolbar_shown(request)) and not is_tracer_request(request, ("tracer",))


@functools.lru_cache(maxsize=8)
def _records(middleware: tuple[str, ...]) -> bool:
    for path in middleware:
        try:
            found = import_string(path)
        except ImportError:
            continue
        if isinstance(found, type) and issubclass(found, TracerMiddleware):
            return True
    return False


def middleware_records() -> bool:
    """Whether TracerMiddleware (or a subclass) is in ``MIDDLEWARE``: then it records
    each request, and the panel shows its trace."""
    return _records(tuple(getattr(settings, "MIDDLEWARE", None) or ()))


def stats(request: HttpRequest, response: HttpResponseBase) -> dict[str, Any]:
    """What the panel shows of ``request``'s trace, JSON-safe (the toolbar keeps it
    as JSON in its store, and renders the panel and its history from it alone)."""
    trace = getattr(request, "tracer_trace", None)
    if trace is None:
        return {"skipped": NOT_RECORDED}
    # A trace still recording here is TracerMiddleware's, listed before the toolbar's
    # middleware: the panel shows it as it is now.
    live = not trace.finished
    data = trace.to_dict()
    summary = summary_of(trace)
    if live:
        summary = {**summary, "status": response.status_code}
    marks = display.Marks(display.mapping(data.get("findings")))
    count = len(display.items(data.get("statements")))
    shown = display.statement_rows(data, range(min(STATEMENTS_PAGE, count)), marks)
    found = display.findings(data)
    del found["similar"]  # the panel does not list shapes; the app's trace page does
    return {
        "data": {"id": data.get("id"), "label": data.get("label")},
        "summary": summary,
        "findings": found,
        "dropped": display.dropped(data),
        "statements_total": count,
        "live": live,
        **_page("rows", shown, 0, STATEMENTS_PAGE, count),
    }


def subtitle(recorded: dict[str, Any]) -> str:
    """``"51 statements, 3.21 ms DB, 1 N+1"``; ``""`` before anything is recorded."""
    summary = recorded.get("summary")
    if not isinstance(summary, dict):
        return ""
    statements = int(display.number(summary.get("statements")))
    n_plus_ones = int(display.number(summary.get("n_plus_ones")))
    db_ms = display.number(summary.get("db_ms"))
    return (
        f"{statements:,} statement{'' if statements == 1 else 's'}, {db_ms:,.2f} ms DB, "
        f"{n_plus_ones:,} N+1{'' if n_plus_ones == 1 else 's'}"
    )


def context(recorded: dict[str, Any]) -> dict[str, Any]:
    """The template's context: the recorded stats, and the tracer app's URL of the
    trace (None when ``tracer.urls`` is not mounted: no drawers then)."""
    trace_id = display.mapping(recorded.get("data")).get("id")
    trace_url = None
    if isinstance(trace_id, str):
        try:
            trace_url = reverse("tracer:trace", args=[trace_id])
        except NoReverseMatch:
            pass
    return {
        **recorded,
        "trace_url": trace_url,
        "groups_link": f"{trace_url}#tracer-groups" if trace_url else "",
    }
