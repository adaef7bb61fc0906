"""Two traces side by side, by statement fingerprint: what ran more or less often or
took longer, what is new and what went away."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tracer.access import tracer_view
from tracer.analysis.fingerprint import fingerprint, normalize
from tracer.sqldisplay import collapse
from tracer.store import ListQuery, get_store, summary_of
from tracer.views import display
from tracer.views.dashboard import row as list_row
from tracer.views.traces import get_trace

#: Fingerprints listed; the rest are counted.
COMPARE_ROWS = 200
#: Traces offered in the form that picks two.
CHOICES = 100
#: The figures compared at the top: (summary key, label).
FIGURES = (
    ("statements", "Statements"),
    ("duration_ms", "Total ms"),
    ("db_ms", "DB ms"),
    ("orm_ms", "ORM ms"),
    ("n_plus_ones", "N+1"),
    ("duplicates", "Duplicate groups"),
    ("slow", "Slow statements"),
)
#: Row states, in the order they are listed.
STATES = ("new", "gone", "more", "fewer", "same")


def shapes(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per fingerprint, in the order each first ran: its shape, how many statements,
    their time in the database, and the first one's index."""
    found: dict[str, dict[str, Any]] = {}
    for position, statement in enumerate(display.items(data.get("statements"))):
        statement = display.mapping(statement)
        sql = display.text(statement.get("sql"))
        vendor = statement.get("vendor")
        key = fingerprint(sql, vendor)
        entry = found.get(key)
        if entry is None:
            shape = normalize(sql, vendor)
            entry = found[key] = {"shape": shape, "count": 0, "ms": 0.0, "first": position}
        backend = display.mapping(display.mapping(statement.get("stages")).get("backend"))
        entry["count"] += 1
        entry["ms"] += display.number(backend.get("execute_ms")) + display.number(
            backend.get("fetch_ms")
        )
    return found


def comparison(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per fingerprint of either trace: new ones first, then those that went
    away, ran more often, less often, and as often; the largest change in count
    first, then in time."""
    old, new = shapes(before), shapes(after)
    rows: list[dict[str, Any]] = []
    for key in [*new, *(key for key in old if key not in new)]:
        a, b = old.get(key), new.get(key)
        if a is None:
            state = "new"
        elif b is None:
            state = "gone"
        else:
            state = (
                "more"
                if b["count"] > a["count"]
                else "fewer"
                if b["count"] < a["count"]
                else "same"
            )
        either = b or a
        assert either is not None
        before_ms = a["ms"] if a else 0.0
        after_ms = b["ms"] if b else 0.0
        rows.append(
            {
                "fingerprint": key,
                "state": state,
                "shape": collapse(either["shape"], limit=display.GROUP_SQL_CHARS),
                "before": a,
                "after": b,
                "count_delta": (b["count"] if b else 0) - (a["count"] if a else 0),
                "ms_delta": after_ms - before_ms,
            }
        )
    rows.sort(
        key=lambda row: (
            STATES.index(row["state"]),
            -abs(row["count_delta"]),
            -abs(row["ms_delta"]),
        )
    )
    return rows


def figures(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, label in FIGURES:
        a, b = display.number(before.get(key)), display.number(after.get(key))
        rows.append({"key": key, "label": label, "before": a, "after": b, "delta": b - a})
    return rows


@tracer_view
def compare(request: HttpRequest) -> HttpResponse:
    """``?a=<id>&b=<id>`` (before, after), or two ``trace`` ids from the dashboard's
    checkboxes (the earlier one is "before"). Without two, the form to pick them."""
    picked = [value for value in request.GET.getlist("trace") if value]
    if picked:
        ids = picked
    else:
        ids = [value for value in (request.GET.get("a", ""), request.GET.get("b", "")) if value]
    if len(ids) != 2:
        # From a trace's page (?a=<id>) the form comes with that one picked; from the
        # dashboard, ticking other than two is a mistake to point out.
        return _choose(request, picked, status=400 if picked else 200)
    traces = [get_trace(trace_id) for trace_id in ids]
    if picked:
        traces.sort(key=lambda trace: trace.started_at)
    before, after = (trace.to_dict() for trace in traces)
    summaries = [summary_of(trace) for trace in traces]
    rows = comparison(before, after)
    context = {
        "a": summaries[0]["id"],
        "b": summaries[1]["id"],
        "before": summaries[0],
        "after": summaries[1],
        "figures": figures(*summaries),
        "rows": rows[:COMPARE_ROWS],
        "more_rows": max(0, len(rows) - COMPARE_ROWS),
        "counts": {state: sum(1 for row in rows if row["state"] == state) for state in STATES},
        "choices": _choices(),
    }
    return render(request, "tracer/compare.html", context)


def _choose(request: HttpRequest, ids: list[str], status: int) -> HttpResponse:
    context = {
        "choices": _choices(),
        "error": f"Pick two traces to compare ({len(ids)} picked)." if ids else "",
        "a": request.GET.get("a", ""),
        "b": request.GET.get("b", ""),
    }
    return render(request, "tracer/compare.html", context, status=status)


def _choices() -> list[dict[str, Any]]:
    rows, _ = get_store().summaries(ListQuery(limit=CHOICES))
    return [list_row(row) for row in rows]
