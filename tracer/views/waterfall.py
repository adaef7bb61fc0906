"""The waterfall: every statement of a trace on one time axis, as HTML/CSS bars.

Its rows are written here rather than in a template: a page draws up to ``ROWS`` of
them, and Django's template engine took about 70 µs a row where ``format_html`` takes
a few. Every recorded value goes through ``format_html``'s escaping.
"""

from __future__ import annotations

import math
from typing import Any

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from tracer.views.display import Marks, items, mapping, number, text

#: Rows drawn at most; past it, each row is a run of consecutive statements.
ROWS = 250
#: Characters of a row's label.
LABEL_CHARS = 60

Span = tuple[float, float, float, bool]


def waterfall(data: dict[str, Any], marks: Marks, max_rows: int | None = None) -> dict[str, Any]:
    """Every statement on one time axis, from the trace's start: where it started,
    its execute time, then its fetch time (drawn right after the execute: fetches are
    timed, not placed), over the span of its operation (Python included). Past
    ``max_rows`` statements (``ROWS``), each row is a run of consecutive statements,
    drawn from the first one's start to the last one's end."""
    max_rows = max_rows or ROWS
    statements = items(data.get("statements"))
    operations = items(data.get("operations"))
    spans = [_span(statement) for statement in statements]
    total = number(data.get("duration_ms"))
    for span in spans:
        if span is not None:
            total = max(total, span[0] + span[1] + span[2])
    total = total or 1.0
    count = len(statements)
    per_row = max(1, math.ceil(count / max_rows))
    rows = []
    for first in range(0, count, per_row):
        last = min(first + per_row, count) - 1
        if per_row == 1:
            row = _statement_bar(
                first, mapping(statements[first]), spans[first], operations, total
            )
        else:
            row = _run_bar(first, last, spans[first : last + 1], total)
        members = range(first, last + 1)
        row["marks"] = marks.among(members)
        if any(span is not None and span[3] for span in spans[first : last + 1]):
            row["marks"].append("error")
        rows.append(row)
    return {
        "rows": rows,
        "total_ms": total,
        "per_row": per_row,
        "ticks": [
            {"ms": total * share / 4, "percent": _percent(share * 25)} for share in range(5)
        ],
    }


def _percent(value: float) -> str:
    """A CSS percentage, short and never negative."""
    return f"{max(0.0, value):.3f}%"


def _span(statement: Any) -> Span | None:
    """(start, execute, fetch, failed), times in ms; None if it never started."""
    try:  # the export's own shape, quickly: a page may draw thousands
        start = statement["start_ms"]
        backend = statement["stages"]["backend"]
        execute, fetch = backend["execute_ms"], backend["fetch_ms"]
        if type(start) is float and type(execute) is float and type(fetch) is float:
            return start, execute, fetch, backend["error"] is not None
    except (KeyError, TypeError):
        pass
    statement = mapping(statement)
    start = statement.get("start_ms")
    if not isinstance(start, (int, float)) or isinstance(start, bool):
        return None
    backend = mapping(mapping(statement.get("stages")).get("backend"))
    return (
        number(start),
        number(backend.get("execute_ms")),
        number(backend.get("fetch_ms")),
        bool(backend.get("error")),
    )


def _statement_bar(
    index: int, statement: dict[str, Any], span: Span | None, operations: list[Any], total: float
) -> dict[str, Any]:
    position = statement.get("operation")
    operation = (
        mapping(operations[position])
        if isinstance(position, int) and 0 <= position < len(operations)
        else {}
    )
    what = text(
        operation.get("detail")
        or mapping(mapping(statement.get("stages")).get("queryset")).get("code")
        or operation.get("trigger")
        or statement.get("sql")
    )
    label = what if len(what) <= LABEL_CHARS else what[: LABEL_CHARS - 1] + "…"
    row: dict[str, Any] = {"first": index, "last": index, "label": label}
    if span is None:
        row["title"] = f"#{index + 1}: never started"
        return row
    start, execute, fetch, _ = span
    row["execute"] = (_percent(start / total * 100), _percent(execute / total * 100))
    if fetch:
        row["fetch"] = (_percent((start + execute) / total * 100), _percent(fetch / total * 100))
    op_start = operation.get("start_ms")
    op_ms = operation.get("duration_ms")
    if isinstance(op_start, (int, float)) and isinstance(op_ms, (int, float)):
        row["operation"] = (
            _percent(number(op_start) / total * 100),
            _percent(number(op_ms) / total * 100),
        )
    trigger = text(operation.get("trigger") or statement.get("kind"))
    row["title"] = (
        f"#{index + 1} {trigger} {label}: starts at {start:.3f} ms; execute {execute:.3f} ms, "
        f"fetch {fetch:.3f} ms"
        + (f"; its operation {number(op_ms):.3f} ms" if "operation" in row else "")
    )
    return row


def _run_bar(first: int, last: int, spans: list[Span | None], total: float) -> dict[str, Any]:
    started = [span for span in spans if span is not None]
    row: dict[str, Any] = {"first": first, "last": last, "label": f"{last - first + 1} statements"}
    if not started:
        row["title"] = f"#{first + 1}–#{last + 1}: never started"
        return row
    begin = min(span[0] for span in started)
    end = max(span[0] + span[1] + span[2] for span in started)
    db = sum(span[1] + span[2] for span in started)
    row["run"] = (_percent(begin / total * 100), _percent((end - begin) / total * 100))
    row["title"] = (
        f"#{first + 1}–#{last + 1}: {last - first + 1} statements from {begin:.3f} ms to "
        f"{end:.3f} ms, {db:.3f} ms of it in the database"
    )
    return row


_BAR = '<span class="tracer-wf-{}" style="left:{};width:{}"></span>'
# Row keys of the bars, in drawing order, and their CSS class suffixes.
_BARS = (("operation", "op"), ("execute", "exec"), ("fetch", "fetch"), ("run", "run"))


def rows_html(chart: dict[str, Any], trace_id: str) -> SafeString:
    """The chart's rows as ``<li>`` elements: a label (the statement, opening in the
    drawer; or the run, linking to its page of the statement list) and the bars.
    Statements are numbered from 1, as everywhere in the UI (indexes count from 0)."""
    statements_url = reverse("tracer:statements", args=(trace_id,))
    single = chart["per_row"] == 1
    written = []
    for row in chart["rows"]:
        classes = "".join(f" tracer-wf-{mark}" for mark in row["marks"])
        if single:
            url = reverse("tracer:statement", args=(trace_id, row["first"]))
            link = format_html(
                '<a class="tracer-statement-link" href="{0}" hx-get="{0}" '
                'hx-target="#tracer-drawer-body" aria-controls="tracer-drawer">#{1}</a>',
                url,
                row["first"] + 1,
            )
        else:
            link = format_html(
                '<a href="{}?offset={}">#{}–{}</a>',
                statements_url,
                row["first"],
                row["first"] + 1,
                row["last"] + 1,
            )
        # Only class names and percentages computed here: nothing recorded.
        bars = "".join(_BAR.format(css, *row[key]) for key, css in _BARS if key in row)
        written.append(
            format_html(
                '<li class="tracer-wf-row{}" title="{}"><span class="tracer-wf-label">{} {}'
                '</span><span class="tracer-wf-track">{}</span></li>',
                classes,
                row["title"],
                link,
                row["label"],
                mark_safe(bars),
            )
        )
    return mark_safe("\n".join(written))
