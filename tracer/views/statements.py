"""One statement: its six stages as a pipeline, where its time went, and its EXPLAIN.

Rendered from the trace's export only (``trace.to_dict()``, docs/trace-format.md), so
a trace loaded from a file shows the same page as the live one. Imported data is not
trusted to be well formed: a missing or odd value shows as absent, never as an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from tracer import djangosource, sqldisplay, values
from tracer.access import NotFound, missing_trace, tracer_view
from tracer.analysis.explain import VENDORS, ExplainError, Plan, PlanNode, select_problem
from tracer.analysis.explain import explain as run_explain
from tracer.stacks import short_path
from tracer.store import IMPORTED, ParamsUnavailable, get_store
from tracer.views.htmx import is_htmx, vary_on_htmx

STAGES = ("model", "manager", "queryset", "query", "compiler", "backend")
TITLES = {
    "model": "Model",
    "manager": "Manager",
    "queryset": "QuerySet",
    "query": "Query",
    "compiler": "SQLCompiler",
    "backend": "Backend",
}
#: The measured parts of a statement's time, in the order they happen:
#: (key, stage, stage key, label).
PARTS = (
    ("build", "queryset", "build_ms", "QuerySet calls"),
    ("compile", "compiler", "compile_ms", "compiling (as_sql)"),
    ("execute", "backend", "execute_ms", "database: execute"),
    ("fetch", "backend", "fetch_ms", "database: fetch"),
    ("convert", "backend", "convert_ms", "converting values"),
    ("hydrate", "backend", "hydrate_ms", "building results"),
)
DATABASE_PARTS = ("execute", "fetch")
#: Django's lookups as the SQL operators they become, for reading.
OPERATORS = {
    "exact": "=",
    "iexact": "= (case-insensitive)",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "in": "IN",
    "isnull": "IS NULL",
    "contains": "LIKE %…%",
    "icontains": "LIKE %…% (case-insensitive)",
    "startswith": "LIKE …%",
    "istartswith": "LIKE …% (case-insensitive)",
    "endswith": "LIKE %…",
    "iendswith": "LIKE %… (case-insensitive)",
    "range": "BETWEEN",
    "regex": "REGEXP",
}
#: Facts of a plan node shown on its line (the others are under "all fields").
PLAN_FACTS = (
    "Index Cond",
    "Recheck Cond",
    "Filter",
    "Join Filter",
    "Hash Cond",
    "Merge Cond",
    "Sort Key",
    "Group Key",
    "key",
    "possible_keys",
    "rows_examined_per_scan",
    "filtered",
    "attached_condition",
)
#: How many statement links a finding lists before "and N more".
LINKS_SHOWN = 20
#: How many params the table lists before "and N more" (the SQL with the params
#: written in collapses long lists the same way).
PARAMS_SHOWN = 100
#: Characters shown of each param's name, type and value (the SQL with the params
#: written in is cut as a whole, at sqldisplay.MAX_LENGTH).
PARAM_CHARS = 1_000


def _rendered(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return vary_on_htmx(render(request, template, context, status=status))


# Views -------------------------------------------------------------------------------


@tracer_view
@require_GET
@ensure_csrf_cookie
def statement(request: HttpRequest, trace_id: str, index: int) -> HttpResponse:
    """The statement's pipeline: the drawer fragment for htmx, else its own page."""
    context = statement_context(trace_id, index)
    context["drawer"] = is_htmx(request)
    template = "tracer/_pipeline.html" if context["drawer"] else "tracer/statement.html"
    return _rendered(request, template, context)


@tracer_view
@require_POST
@csrf_protect
def explain(request: HttpRequest, trace_id: str, index: int) -> HttpResponse:
    """EXPLAIN (or, on PostgreSQL, EXPLAIN ANALYZE) of the statement: the plan as a
    fragment for htmx, else the statement's page with the plan in it."""
    analyze = request.POST.get("analyze") in ("1", "on", "true")
    result = explained(trace_id, index, analyze=analyze)
    if is_htmx(request):
        return _rendered(request, "tracer/_explain.html", {"explain": result, "index": index})
    context = statement_context(trace_id, index)
    context["explain"] = result
    return _rendered(request, "tracer/statement.html", context)


# The statement -----------------------------------------------------------------------


@dataclass
class Part:
    """One measured part of the statement's time, as a share of the whole."""

    key: str
    label: str
    ms: float
    #: CSS width, a share of the statement's measured time: ``"12.50%"``.
    width: str


@dataclass
class Stage:
    name: str
    title: str
    #: The stage's exported data; None when the statement did not go through it.
    data: dict[str, Any] | None
    #: Why the stage was skipped, when it was.
    skipped: str | None = None
    #: Its measured time, or None when nothing is measured at this stage alone.
    ms: float | None = None
    parts: list[Part] = field(default_factory=list)
    #: One line saying what the stage was.
    gist: str = ""
    #: Why there is no time of its own, when there is none.
    untimed: str = ""
    links: list[djangosource.SourceLink] = field(default_factory=list)


def statement_context(trace_id: str, index: int) -> dict[str, Any]:
    """Everything the statement's page and drawer show, from the trace's export."""
    trace = get_store().get(trace_id)
    if trace is None:
        raise NotFound(missing_trace(trace_id))
    data = trace.to_dict()
    statements = _list(data.get("statements"))
    if not 0 <= index < len(statements) or not isinstance(statements[index], dict):
        raise NotFound(
            f"Trace {trace_id!r} has {len(statements)} statement(s): there is no "
            f"statement #{index + 1}."
        )
    item = statements[index]
    stages = {name: _dict(_dict(item.get("stages")).get(name)) or None for name in STAGES}
    timeline = timeline_of(stages)
    total = sum(part[2] for part in timeline)
    vendor = str(item.get("vendor") or "")
    return {
        "trace_id": trace_id,
        "trace_label": _trace_label(data),
        "trace_url": _trace_url(trace_id),
        "imported": bool(trace.imported),
        "index": index,
        "number": index + 1,
        "count": len(statements),
        "previous": index - 1 if index > 0 else None,
        "next": index + 1 if index + 1 < len(statements) else None,
        "statement": item,
        "vendor": vendor,
        "location": _place(item.get("location")),
        "template": _dict(item.get("template")) or None,
        "error": _dict(_dict(stages["backend"]).get("error")) or None,
        "stages": _stages(item, stages, timeline, total),
        "parts": time_parts(timeline, total),
        "total_ms": total,
        "database_ms": sum(ms for key, _, ms in timeline if key in DATABASE_PARTS),
        "python_ms": sum(ms for key, _, ms in timeline if key not in DATABASE_PARTS),
        "operations": _operations(data, item),
        "siblings": _siblings(statements, item),
        "findings": _findings(data, index, item),
        "sql": _sql(item, vendor),
        "explain_offer": explain_offer(
            item, imported=bool(trace.imported), kept=_kept_params(trace_id, index)
        ),
        "explain": None,
        "drawer": False,
    }


def _place(frame: Any) -> dict[str, Any] | None:
    """An exported frame (``{"file", "line", "function", "source"}``) with its file
    as people read it (stacks.short_path), or None."""
    frame = _dict(frame)
    if not frame:
        return None
    if isinstance(frame.get("file"), str):
        return {**frame, "file": short_path(frame["file"])}
    return frame


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _indexes(value: Any) -> list[int]:
    return [item for item in _list(value) if isinstance(item, int)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _trace_label(data: dict[str, Any]) -> str:
    request = _dict(data.get("request"))
    if request.get("path"):
        return f"{request.get('method') or ''} {request['path']}".strip()
    return str(data.get("label") or "") or f"trace {data.get('id', '')}"


def _trace_url(trace_id: str) -> str | None:
    try:
        return reverse("tracer:trace", args=[trace_id])
    except NoReverseMatch:
        return None


def timeline_of(stages: dict[str, dict[str, Any] | None]) -> list[tuple[str, str, float]]:
    """(key, label, ms) of each part measured for this statement, in order."""
    found = []
    for key, stage, name, label in PARTS:
        ms = _number(_dict(stages[stage]).get(name))
        if ms:  # a part that took no time (a lazy load builds no QuerySet) is left out
            found.append((key, label, ms))
    return found


def _width(ms: float, total: float) -> str:
    return f"{100 * ms / total:.2f}%" if total > 0 else "0%"


def time_parts(timeline: list[tuple[str, str, float]], total: float) -> list[Part]:
    return [Part(key, label, ms, _width(ms, total)) for key, label, ms in timeline]


def _stages(
    item: dict[str, Any],
    stages: dict[str, dict[str, Any] | None],
    timeline: list[tuple[str, str, float]],
    total: float,
) -> list[Stage]:
    links = djangosource.stage_links(item)
    owners = {key: stage for key, stage, _, _ in PARTS}
    found = []
    for name in STAGES:
        data = stages[name]
        stage = Stage(name, TITLES[name], data, links=links.get(name, []))
        if data is None:
            stage.skipped = _skipped(name, item, stages)
        else:
            stage.parts = [
                Part(key, label, ms, _width(ms, total))
                for key, label, ms in timeline
                if owners[key] == name
            ]
            measured = [_number(data.get(key)) for _, owner, key, _ in PARTS if owner == name]
            if any(ms is not None for ms in measured):
                stage.ms = sum(ms or 0.0 for ms in measured)
            stage.gist, stage.untimed = _gist(name, data, item)
            if name == "query":
                view = query_view(_dict(data.get("state")))
                if view:
                    view["links"] = djangosource.query_part_links(data.get("class"))
                stage.data = {**data, "view": view}
            elif name == "compiler":
                stage.data = {**data, "shown": _compiled(data, item)}
            elif name == "queryset":
                stage.data = {
                    **data,
                    "shown_calls": _calls(data),
                    "trigger_location": _place(data.get("trigger_location")),
                }
            elif name == "manager":
                related = _dict(data.get("related"))
                pk = values.text(related.get("pk")) if related else None
                stage.data = {**data, "reached": stage.gist.split(" · ")[0], "pk": pk}
        found.append(stage)
    return found


def _skipped(name: str, item: dict[str, Any], stages: dict[str, dict[str, Any] | None]) -> str:
    """Why the statement did not go through stage ``name`` (from what the export says)."""
    kind = item.get("kind")
    if kind == "transaction":
        return "A transaction statement made by the driver: no ORM stage."
    if stages["query"] is None:
        return "Raw SQL (cursor.execute): no {}.".format(
            {"model": "model", "manager": "manager", "queryset": "QuerySet", "query": "Query"}.get(
                name, "compiler"
            )
        )
    if name == "compiler":
        return "raw(): your SQL went to the database as written, no compiler made it."
    if name == "queryset":
        return (
            "ORM SQL that is not a QuerySet your code built: a save(), a delete() and "
            "its cascade, a refresh_from_db(), a savepoint."
        )
    if name == "manager":
        if stages["queryset"] is None:
            return "No manager: the ORM made this SQL itself, not from a manager's QuerySet."
        return (
            "The QuerySet's lineage does not start at a manager the tracer saw (built "
            "before the capture began, or unpickled)."
        )
    return "Not recorded for this statement."


def _gist(name: str, data: dict[str, Any], item: dict[str, Any]) -> tuple[str, str]:
    """(one line saying what the stage was, why it has no time of its own if so)."""
    if name == "model":
        return f"{data.get('label')} · table {data.get('table')}", "Not timed on its own."
    if name == "manager":
        related = _dict(data.get("related"))
        if related:
            owner = str(related.get("instance") or "").rsplit(".", 1)[-1].lower()
        else:
            owner = str(_dict(_dict(item.get("stages")).get("model")).get("label") or "")
            owner = owner.rsplit(".", 1)[-1]
        return f"{owner}.{data.get('name')} · {_short(data.get('class'))}", "Not timed on its own."
    if name == "queryset":
        trigger = str(data.get("trigger") or "")
        if data.get("trigger_detail"):
            trigger += f" {data['trigger_detail']}"
        calls = len(_list(data.get("calls")))
        return f"{trigger} · {calls} call{'' if calls == 1 else 's'}", ""
    if name == "query":
        state = _dict(data.get("state"))
        bits = [str(data.get("class") or "")]
        tables = len(_list(state.get("tables")))
        if tables > 1:
            bits.append(f"{tables} tables")
        if state.get("where"):
            bits.append("WHERE")
        if state.get("order_by") or state.get("default_ordering"):
            bits.append("ORDER BY")
        if state.get("high_mark") is not None or state.get("low_mark"):
            bits.append("LIMIT")
        return " · ".join(bits), "Built while the QuerySet calls ran: no time of its own."
    if name == "compiler":
        return f"{_short(data.get('class'))} · {data.get('result_type') or 'no result'}", ""
    rows = data.get("rows_fetched")
    count = data.get("rowcount")
    if rows:
        amount = f"{rows} row{'' if rows == 1 else 's'} fetched"
    elif isinstance(count, int) and count >= 0:
        amount = f"{count} row{'' if count == 1 else 's'} changed"
    else:
        amount = "no rows"
    return f"{data.get('vendor')} ({data.get('alias')}) · {amount}", ""


def _short(path: Any) -> str:
    """The class name of a class path (``...<locals>.RelatedManager`` -> ``RelatedManager``)."""
    return str(path or "").rsplit(".", 1)[-1]


def _calls(data: dict[str, Any]) -> list[dict[str, Any]]:
    path = data.get("class")
    return [
        {
            **call,
            "link": djangosource.call_link(path, str(call.get("code", ""))),
            "location": _place(call.get("location")),
        }
        for call in _list(data.get("calls"))
        if isinstance(call, dict)
    ]


def _compiled(data: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """The compiler's SQL: the statement's own (not shown twice), or each statement it
    made (inserts make a list), highlighted, with its params."""
    sql, params = data.get("sql"), data.get("params")
    if sql == item.get("sql") and params == item.get("params"):
        return {"same": True, "items": []}
    vendor = str(item.get("vendor") or "")
    if isinstance(sql, list):
        given = params if isinstance(params, list) else []
        pairs = [(text, given[i] if i < len(given) else None) for i, text in enumerate(sql)]
    else:
        pairs = [(sql, params)]
    return {
        "same": False,
        "items": [
            {"html": _highlight(str(text), vendor), "params": params_rows(given)}
            for text, given in pairs
            if text is not None
        ],
    }


# Query internals ---------------------------------------------------------------------


def query_view(state: dict[str, Any]) -> dict[str, Any]:
    """The querystate (``tracer.querystate.describe()``) with what its template needs
    worked out: joins as text, the slice as LIMIT/OFFSET, the WHERE tree with
    operators, the select_related paths, combined and inner queries likewise."""
    if not state:
        return {}
    low = state.get("low_mark") or 0
    high = state.get("high_mark")
    limit = None
    if isinstance(high, int) and isinstance(low, int):
        limit = f"LIMIT {high - low}" + (f" OFFSET {low}" if low else "")
    elif isinstance(low, int) and low:
        limit = f"OFFSET {low}"
    combinator = _dict(state.get("combinator"))
    return {
        **state,
        "joins": [_join(table) for table in _list(state.get("tables")) if isinstance(table, dict)],
        "where_tree": _where(state.get("where")),
        "limit": limit,
        "annotation_items": list(_dict(state.get("annotations")).items()),
        "set_items": list(_dict(state.get("set")).items()),
        "related_paths": _related_paths(state.get("select_related")),
        "combined": [query_view(_dict(part)) for part in _list(combinator.get("parts"))],
        "inner_view": query_view(_dict(state.get("inner"))) if state.get("inner") else None,
        "links": {},
    }


def _join(table: dict[str, Any]) -> dict[str, Any]:
    alias, parent = table.get("alias"), table.get("parent")
    on = " AND ".join(
        f"{parent}.{pair[0]} = {alias}.{pair[1]}"
        for pair in _list(table.get("on"))
        if isinstance(pair, list) and len(pair) == 2
    )
    return {**table, "on_text": on}


def _where(node: Any) -> dict[str, Any] | None:
    """A WHERE tree for the template: each child a ``tree``, a ``lookup`` (with its
    SQL operator) or a ``condition`` (readable text)."""
    if not isinstance(node, dict):
        return None
    children = []
    for child in _list(node.get("children")):
        if isinstance(child, dict) and "children" in child:
            children.append({"kind": "tree", "tree": _where(child)})
        elif isinstance(child, dict) and "lookup" in child:
            lookup = str(child.get("lookup"))
            rhs = child.get("rhs")
            operator = OPERATORS.get(lookup, "")
            if lookup == "isnull" and isinstance(rhs, bool):
                operator, rhs = ("IS NULL" if rhs else "IS NOT NULL"), ""
            children.append(
                {
                    "kind": "lookup",
                    "lhs": str(child.get("lhs")),
                    "lookup": lookup,
                    "operator": operator,
                    "rhs": rhs if isinstance(rhs, str) else json.dumps(rhs),
                }
            )
        else:
            children.append({"kind": "condition", "text": str(child)})
    return {
        "connector": str(node.get("connector") or "AND"),
        "negated": bool(node.get("negated")),
        "children": children,
    }


def _related_paths(tree: Any, prefix: str = "") -> list[str]:
    """``{"author": {"profile": {}}}`` -> ``["author", "author__profile"]``."""
    if not isinstance(tree, dict):
        return []
    paths = []
    for name, below in tree.items():
        path = f"{prefix}{name}"
        paths.append(path)
        paths.extend(_related_paths(below, f"{path}__"))
    return paths


# Around the statement ----------------------------------------------------------------


def _operations(data: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """The operation the statement belongs to, the ones it ran inside (outermost
    first), and the evaluation that loaded its instance (for a lazy load)."""
    operations = _list(data.get("operations"))

    def get(position: Any) -> dict[str, Any] | None:
        if isinstance(position, int) and not isinstance(position, bool):
            if 0 <= position < len(operations) and isinstance(operations[position], dict):
                return operations[position]
        return None

    own = get(item.get("operation"))
    chain: list[dict[str, Any]] = []
    parent = get(own.get("parent")) if own else None
    while parent is not None and parent not in chain and len(chain) < len(operations):
        chain.append(parent)
        parent = get(parent.get("parent"))
    chain.reverse()
    loader = get(own.get("loaded_by")) if own else None
    return {
        "own": own,
        "parents": [_placed(parent) for parent in chain],
        "loaded_by": _placed(loader) if loader is not None else None,
        "instance_pk": values.text(own.get("instance_pk"))
        if own and own.get("instance_pk") is not None
        else None,
    }


def _placed(operation: dict[str, Any]) -> dict[str, Any]:
    return {**operation, "location": _place(operation.get("location"))}


def _siblings(statements: list[Any], item: dict[str, Any]) -> list[int]:
    """The indexes of the other statements of the same operation."""
    operation = item.get("operation")
    if operation is None:
        return []
    return [
        position
        for position, other in enumerate(statements)
        if isinstance(other, dict) and other.get("operation") == operation and other is not item
    ]


def _findings(data: dict[str, Any], index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    """What the trace's analysis found that involves this statement."""
    found = _dict(data.get("findings"))
    notes: list[dict[str, Any]] = []

    def add(kind: str, title: str, text: str, indexes: Any, fix: str = "") -> None:
        others = [i for i in _indexes(indexes) if i != index]
        notes.append(
            {
                "kind": kind,
                "title": title,
                "text": text,
                "fix": fix,
                "others": others[:LINKS_SHOWN],
                "more": max(0, len(others) - LINKS_SHOWN),
            }
        )

    # Statements an N+1 or a duplicate already groups: a similar group within them
    # says nothing more.
    grouped: list[Any] = []
    for n1 in _list(found.get("n_plus_ones")):
        if index in _list(_dict(n1).get("statements")):
            grouped.append(n1.get("statements"))
            add(
                "n_plus_one",
                f"N+1: {n1.get('relation')}",
                f"{n1.get('queries')} queries for {n1.get('instances')} instances, loaded "
                f"at {short_path(str(n1.get('loaded_at')))}; "
                f"each load at {short_path(str(n1.get('location')))}.",
                n1.get("statements"),
                str(n1.get("fixed_code") or n1.get("fix") or ""),
            )
    for group in _list(found.get("duplicates")):
        if index in _list(_dict(group).get("indexes")):
            grouped.append(group.get("indexes"))
            add(
                "duplicate",
                "Duplicate",
                f"The same SQL with the same params ran {group.get('count')} times.",
                group.get("indexes"),
            )
    for group in _list(found.get("similar")):
        indexes = _dict(group).get("indexes")
        covered = any(set(_indexes(indexes)) <= set(_indexes(other)) for other in grouped)
        if index in _list(indexes) and not covered:
            add(
                "similar",
                "Similar",
                f"This SQL, with other values, ran {group.get('count')} times.",
                indexes,
            )
    for slow in _list(found.get("slow")):
        if _dict(slow).get("index") == index:
            ms = _number(slow.get("duration_ms"))
            took = "?" if ms is None else f"{ms:,.3f}"
            add("slow", "Slow", f"{took} ms, over TRACER['SLOW_MS'].", [])
    for unused in _list(found.get("unused_eager")):
        if item.get("operation") is not None and _dict(unused).get("operation") == item.get(
            "operation"
        ):
            add(
                "unused_eager",
                f"Unused {unused.get('kind') or 'prefetch_related'}: {unused.get('lookup')}",
                str(unused.get("fix") or ""),
                [],
            )
    for risk in _list(found.get("injection")):
        if index in _list(_dict(risk).get("indexes")):
            literals = ", ".join(str(text) for text in _list(risk.get("literals")))
            add(
                "injection",
                "Injection risk",
                f"Values written into raw SQL ({risk.get('kind')}): {literals}.",
                risk.get("indexes"),
                str(risk.get("suggestion") or ""),
            )
    return notes


# SQL ---------------------------------------------------------------------------------


def _highlight(sql: str, vendor: str) -> Any:
    return sqldisplay.highlight(sql, vendor=vendor or None)


def _sql(item: dict[str, Any], vendor: str) -> dict[str, Any]:
    """The statement's SQL highlighted, its params apart, and written in."""
    sql = item.get("sql")
    text = sql if isinstance(sql, str) else str(sql)
    params = item.get("params")
    kind = item.get("kind")
    rows = None
    if kind == "executemany" and isinstance(params, list):
        rows = len(params)
        params = params[0] if params else None
    interpolated = None
    if kind in ("execute", "executemany") and params is not None and not isinstance(params, str):
        written = sqldisplay.interpolate(text, values.python(params), vendor)
        interpolated = _highlight(written, vendor)
    return {
        "html": _highlight(text, vendor),
        "params": params_rows(item.get("params") if rows is None else params),
        "params_note": params if isinstance(params, str) else None,
        "rows": rows,
        "interpolated": interpolated,
    }


def params_rows(params: Any) -> list[dict[str, str]]:
    """Params as rows of (position or name, type, value as Python writes it)."""
    if isinstance(params, dict) and not values.is_value_dict(params):
        pairs = list(params.items())
    elif isinstance(params, list):
        pairs = [(str(position), value) for position, value in enumerate(params, 1)]
    else:
        return []
    rows = [
        {
            "name": _cut(str(name)),
            "type": _cut(values.type_name(value)),
            "value": _cut(values.text(value)),
        }
        for name, value in pairs[:PARAMS_SHOWN]
    ]
    if len(pairs) > PARAMS_SHOWN:
        rows.append({"name": "…", "type": "", "value": f"and {len(pairs) - PARAMS_SHOWN:,} more"})
    return rows


def _cut(text: str) -> str:
    if len(text) <= PARAM_CHARS:
        return text
    return f"{text[: PARAM_CHARS - 1]}… ({len(text) - PARAM_CHARS + 1:,} more characters)"


# EXPLAIN -----------------------------------------------------------------------------


def _kept_params(trace_id: str, index: int) -> str | None:
    """Why the store does not hold the params a statement ran with, or None: a trace
    loaded from JSON has renderings only, but the file store keeps a SELECT's."""
    try:
        get_store().raw_params(trace_id, index)
    except ParamsUnavailable as exc:
        return str(exc)
    return None


def explain_offer(
    item: dict[str, Any], *, imported: bool, kept: str | None = IMPORTED
) -> dict[str, Any]:
    """Whether EXPLAIN (and ANALYZE) can be offered for this statement, or why not:
    the same rules as tracer.analysis.explain, read from the export. ``kept``: for
    an imported trace, why the store does not hold its real params (None if it does)."""
    sql, vendor, kind = item.get("sql"), str(item.get("vendor") or ""), item.get("kind")
    reason = None
    if imported and kept == IMPORTED:
        reason = (
            "This trace was loaded from an export: its params are JSON renderings, not "
            "the values the statement ran with, so it is not explained."
        )
    elif kind != "execute":
        reason = f"A {kind} statement is not explained: only a single SELECT is."
    elif vendor not in VENDORS:
        reason = f"EXPLAIN is not supported on {vendor}."
    elif isinstance(item.get("params"), str):
        reason = f"Its params were not kept ({item['params']})."
    elif not isinstance(sql, str):
        reason = "Its SQL is not text."
    else:
        reason = select_problem(sql, vendor)
    if reason is None and imported:
        reason = kept
    analyze = (
        reason is None
        and vendor == "postgresql"
        and select_problem(str(sql), vendor, locking_allowed=False) is None
    )
    return {"possible": reason is None, "reason": reason, "analyze": analyze}


def explained(trace_id: str, index: int, *, analyze: bool = False) -> dict[str, Any]:
    """The plan of the statement for the template, or the reason there is none."""
    try:
        plan = run_explain(trace_id, index, analyze=analyze)
    except ExplainError as exc:
        return {"error": str(exc), "plan": None}
    except DatabaseError as exc:
        return {
            "error": f"The database could not explain it: {type(exc).__name__}: {exc}",
            "plan": None,
        }
    return {"error": None, "plan": plan_view(plan)}


def plan_view(plan: Plan) -> dict[str, Any]:
    """A plan as the template shows it: its tree, warnings, and for ANALYZE the
    planning and execution times PostgreSQL reported."""
    document = plan.raw[0] if plan.analyzed and isinstance(plan.raw, list) and plan.raw else {}
    return {
        "vendor": plan.vendor,
        "command": plan.command,
        "analyzed": plan.analyzed,
        "warnings": plan.warnings,
        "root": _node(plan.root, plan.vendor),
        "planning_ms": _dict(document).get("Planning Time"),
        "execution_ms": _dict(document).get("Execution Time"),
    }


def _node(node: PlanNode, vendor: str) -> dict[str, Any]:
    detail = node.detail
    facts = []
    if vendor == "postgresql":
        if "Total Cost" in detail:
            facts.append(("cost", f"{detail.get('Startup Cost')}..{detail['Total Cost']}"))
        if "Plan Rows" in detail:
            facts.append(("estimated rows", str(detail["Plan Rows"])))
        if "Actual Total Time" in detail:
            facts.append(
                (
                    "actual time",
                    f"{detail.get('Actual Startup Time')}..{detail['Actual Total Time']} ms",
                )
            )
            facts.append(("actual rows", str(detail.get("Actual Rows"))))
            facts.append(("loops", str(detail.get("Actual Loops"))))
    facts += [(key, _text(detail[key])) for key in PLAN_FACTS if key in detail]
    return {
        "label": node.label,
        "warnings": node.warnings,
        "facts": facts,
        # SQLite's fields (ids and the text of the label) say nothing more.
        "fields": [] if vendor == "sqlite" else [(key, _text(v)) for key, v in detail.items()],
        "children": [_node(child, vendor) for child in node.children],
    }


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
