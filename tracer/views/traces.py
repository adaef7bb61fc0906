"""One trace: its page (summary, findings, waterfall, groups, the first statements),
and the paged lists of its statements and groups that the page loads more of."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from tracer.access import NotFound, missing_trace, tracer_view
from tracer.store import get_store, summary_of
from tracer.trace import Trace
from tracer.views import display, waterfall
from tracer.views.dashboard import row
from tracer.views.htmx import is_htmx, vary_on_htmx

#: Statements per page of the list (the first page is on the trace page).
STATEMENTS_PAGE = 100
#: Groups per page.
GROUPS_PAGE = 50


def _imported(data: dict[str, Any]) -> bool:
    # Not trace.imported: the file store's traces are loaded from JSON too.
    return str(data.get("label") or "").startswith("imported: ")  # transfer.IMPORTED


def get_trace(trace_id: str) -> Trace:
    trace = get_store().get(trace_id)
    if trace is None:
        raise NotFound(missing_trace(trace_id))
    return trace


def offset_of(request: HttpRequest) -> int:
    try:
        return max(0, int(request.GET.get("offset", "0")))
    except ValueError:
        return 0


@tracer_view
def trace(request: HttpRequest, trace_id: str) -> HttpResponse:
    found = get_trace(trace_id)
    data = found.to_dict()
    summary = row(summary_of(found))
    findings = display.findings(data)
    marks = display.Marks(display.mapping(data.get("findings")))
    statements = display.items(data.get("statements"))
    groups = display.groups(data, marks)
    chart = waterfall.waterfall(data, marks)
    context = {
        "data": data,
        "summary": summary,
        "imported": _imported(data),
        "whole_trace": True,
        "split": display.time_split(summary),
        "dropped": display.dropped(data),
        "findings": findings,
        "waterfall": chart,
        "waterfall_rows": waterfall.rows_html(chart, trace_id),
        **_page("groups", groups[:GROUPS_PAGE], 0, GROUPS_PAGE, len(groups)),
        **_page(
            "rows",
            display.statement_rows(data, range(min(STATEMENTS_PAGE, len(statements))), marks),
            0,
            STATEMENTS_PAGE,
            len(statements),
        ),
        "statements_total": len(statements),
        "groups_total": len(groups),
    }
    return render(request, "tracer/trace.html", context)


@tracer_view
def statements(request: HttpRequest, trace_id: str) -> HttpResponse:
    """A page of the trace's statements (all, or one fingerprint's): the rows alone
    for htmx ("show more"), else a page of its own."""
    found = get_trace(trace_id)
    data = found.to_dict()
    marks = display.Marks(display.mapping(data.get("findings")))
    key = request.GET.get("fingerprint", "")
    count = len(display.items(data.get("statements")))
    positions = display.fingerprint_members(data, key) if key else range(count)
    offset = offset_of(request)
    page = positions[offset : offset + STATEMENTS_PAGE]
    context = {
        "data": data,
        "summary": row(summary_of(found)),
        "imported": _imported(data),
        "fingerprint": key,
        "query": "&" + urlencode({"fingerprint": key}) if key else "",
        **_page(
            "rows",
            display.statement_rows(data, page, marks),
            offset,
            STATEMENTS_PAGE,
            len(positions),
        ),
    }
    template = (
        "tracer/_statement_rows.html" if is_htmx(request) else "tracer/trace_statements.html"
    )
    return vary_on_htmx(render(request, template, context))


@tracer_view
def groups(request: HttpRequest, trace_id: str) -> HttpResponse:
    """A page of the trace's statement groups: rows for htmx, else a page."""
    found = get_trace(trace_id)
    data = found.to_dict()
    marks = display.Marks(display.mapping(data.get("findings")))
    every = display.groups(data, marks)
    offset = offset_of(request)
    context = {
        "data": data,
        "summary": row(summary_of(found)),
        "imported": _imported(data),
        **_page("groups", every[offset : offset + GROUPS_PAGE], offset, GROUPS_PAGE, len(every)),
    }
    template = "tracer/_group_rows.html" if is_htmx(request) else "tracer/trace_groups.html"
    return vary_on_htmx(render(request, template, context))


def _page(name: str, shown: list[Any], offset: int, size: int, total: int) -> dict[str, Any]:
    """``shown`` as the page at ``offset`` of ``total``, with where the pages around
    it start (None when there is none)."""
    following = offset + len(shown)
    return {
        name: shown,
        f"{name}_page": {
            "offset": offset,
            "first": offset + 1 if shown else 0,
            "last": following,
            "total": total,
            "next": following if following < total else None,
            "next_count": min(size, total - following),
            "previous": max(0, offset - size) if offset > 0 else None,
        },
    }
