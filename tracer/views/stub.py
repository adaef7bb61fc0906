"""A stand-in for the statement view (tracer/views/statements.py, built on another
branch), so that the trace pages can link to ``tracer:statement`` here.

Delete this module and its route when that view is merged.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from tracer.access import tracer_view
from tracer.views.traces import get_trace


@tracer_view
def statement(request: HttpRequest, trace_id: str, index: int) -> HttpResponse:
    statements = get_trace(trace_id).to_dict()["statements"]
    if not 0 <= index < len(statements):
        return HttpResponse(status=404)
    return HttpResponse(format_html('<pre class="tracer-sql">{}</pre>', statements[index]["sql"]))
