"""The playground page: a QuerySet expression unfolded stage by stage as you type, and
run on request inside a transaction that is always rolled back.

Compiling is a GET (the expression is in the query string, so a compiled expression
can be bookmarked and shared); running is a POST (it sends SQL, even if rolled back).
The expression is parsed by tracer.playground with an allow-list on its syntax tree,
never evaluated as Python; write methods are compiled and never run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from tracer import djangosource, engines, sqldisplay
from tracer.access import tracer_view
from tracer.analysis.plans import Plan, PlanNode
from tracer.conf import get_config
from tracer.playground import Pipeline, PlaygroundError, RunResult, run, unfold
from tracer.playground.compiling import Compiled
from tracer.playground.parser import MAX_LENGTH
from tracer.store import get_store
from tracer.views.htmx import is_htmx, vary_on_htmx
from tracer.views.statements import (
    PARTS,
    params_rows,
    plan_view,
    query_view,
    time_parts,
    timeline_of,
)

#: Characters of a refused expression echoed past MAX_LENGTH (the rest is cut).
ECHO_PAST_LIMIT = 200
#: The demo bookstore's examples: (what it shows, the expression).
DEMO_EXAMPLES = (
    (
        "filter() across a relation, select_related()",
        'Book.objects.filter(author__name__startswith="A").select_related("author")'
        '.order_by("-published")[:10]',
    ),
    (
        "prefetch_related() with a Prefetch",
        'Author.objects.prefetch_related(Prefetch("books", queryset=Book.objects'
        '.filter(price__lt=20).order_by("title"))).order_by("name")[:5]',
    ),
    (
        "annotate(Count()), then filter() on it",
        'Author.objects.annotate(n_books=Count("books")).filter(n_books__gt=1)'
        '.order_by("-n_books")',
    ),
    ("values_list()", 'Book.objects.values_list("title", "author__name").order_by("title")[:20]'),
    (
        "Q objects: | and ~",
        'Book.objects.filter(Q(title__icontains="django") | Q(author__name="Ann"), '
        "~Q(price__gt=50))",
    ),
    ("count()", "Review.objects.filter(rating__gte=4).count()"),
    (
        "update(): compiled, never run",
        'Book.objects.filter(published__year__lt=2000).update(price=F("price") * Decimal("0.9"))',
    ),
)
DEMO_APP = "demo_app"


@dataclass
class Form:
    """The playground's form, read from a query string or a POST: the expression, the
    database alias and the app whose models bare names refer to (invalid choices fall
    back to the defaults)."""

    q: str
    db: str
    app: str

    @classmethod
    def read(cls, data: QueryDict) -> Form:
        db = data.get("db", "")
        if db not in settings.DATABASES:
            db = default_alias()
        app = data.get("app", "")
        if app not in model_apps():
            app = ""
        # Normalised as a browser sends a textarea: the offsets of a refusal then
        # point at the same characters in the text shown back.
        return cls(data.get("q", "").replace("\r\n", "\n"), db, app)

    def link(self) -> str:
        """This form as the page's address: ``?q=...&db=...``."""
        pairs = [("q", self.q)]
        if self.db != default_alias():
            pairs.append(("db", self.db))
        if self.app:
            pairs.append(("app", self.app))
        return reverse("tracer:playground") + "?" + urlencode(pairs)


def default_alias() -> str:
    return "default" if "default" in settings.DATABASES else next(iter(settings.DATABASES))


def model_apps() -> list[str]:
    """Labels of the installed apps that have models."""
    return [config.label for config in apps.get_app_configs() if list(config.get_models())]


# Views -------------------------------------------------------------------------------


@tracer_view
@require_GET
@ensure_csrf_cookie
def playground(request: HttpRequest) -> HttpResponse:
    """The page, or for htmx the result area alone: the expression compiled (a GET:
    nothing is run)."""
    form = Form.read(request.GET)
    context = _context(form)
    if form.q.strip():
        context.update(compiled(form))
    if not is_htmx(request):
        return vary_on_htmx(render(request, "tracer/playground.html", context))
    response = render(request, "tracer/_playground_result.html", context)
    # The address bar follows what was typed, so it can be bookmarked or shared.
    response["HX-Replace-Url"] = form.link() if form.q else reverse("tracer:playground")
    return vary_on_htmx(response)


@tracer_view
@require_POST
@csrf_protect
def playground_run(request: HttpRequest) -> HttpResponse:
    """Run the expression (reads only, rolled back): the result area for htmx, else
    the page with the results in it."""
    form = Form.read(request.POST)
    context = _context(form)
    config = get_config()
    try:
        result = run(
            form.q,
            form.db,
            row_limit=config.playground_row_limit,
            timeout_ms=config.playground_timeout_ms,
            app=form.app or None,
        )
    except PlaygroundError as exc:
        context["refusal"] = refusal(exc)
    except (DatabaseError, ImproperlyConfigured) as exc:
        context["failure"] = f"{type(exc).__name__}: {exc}"
    else:
        context["pipeline"] = pipeline_view(result.pipeline)
        context["run"] = run_view(result)
        if result.ran:
            count = len(result.timings)
            backend = context["pipeline"]["stages"][-1]
            backend["gist"] = (
                f"sent by Run: {count} statement{'' if count == 1 else 's'}, rolled back"
            )
    template = "tracer/_playground_result.html" if is_htmx(request) else "tracer/playground.html"
    return vary_on_htmx(render(request, template, context))


def _context(form: Form) -> dict[str, Any]:
    config = get_config()
    return {
        "form": form,
        "q_shown": _echo(form.q),
        "databases": [_database(alias) for alias in settings.DATABASES],
        "apps": model_apps(),
        "examples": examples(),
        "max_length": MAX_LENGTH,
        "row_limit": config.playground_row_limit,
        "timeout_ms": config.playground_timeout_ms,
        "link": form.link() if form.q else "",
        "pipeline": None,
        "refusal": None,
        "failure": None,
        "run": None,
    }


def _echo(text: str) -> str:
    limit = MAX_LENGTH + ECHO_PAST_LIMIT
    return text if len(text) <= limit else text[:limit]


def _database(alias: str) -> dict[str, Any]:
    config = settings.DATABASES[alias]
    try:
        engine = engines.wrapped_engine(alias)
    except Exception:  # misconfigured: the system checks say why
        engine = "?"
    return {
        "alias": alias,
        "engine": engine,
        "traced": config.get("ENGINE") == engines.ENGINE,
    }


def compiled(form: Form) -> dict[str, Any]:
    """The expression unfolded for the form's database, or why it was refused."""
    try:
        pipeline = unfold(form.q, form.db, app=form.app or None)
    except PlaygroundError as exc:
        return {"refusal": refusal(exc)}
    except (DatabaseError, ImproperlyConfigured) as exc:
        # MySQL reads the server's version before compiling: the server may be down;
        # an alias's driver may be missing.
        return {"failure": f"{type(exc).__name__}: {exc}"}
    return {"pipeline": pipeline_view(pipeline)}


# Examples ----------------------------------------------------------------------------


def examples() -> list[dict[str, str]]:
    """Expressions to click: the demo bookstore's when it is installed, else a few
    over the first model of the project."""
    if apps.is_installed(DEMO_APP):
        found = [(title, text, DEMO_APP) for title, text in DEMO_EXAMPLES]
    else:
        found = _project_examples()
    return [
        {
            "title": title,
            "q": text,
            "link": reverse("tracer:playground") + "?" + urlencode({"q": text, "app": app}),
        }
        for title, text, app in found
    ]


def _project_examples() -> list[tuple[str, str, str]]:
    for model in apps.get_models():
        module = model.__module__
        if module.startswith(("django.", "tracer.")):
            continue
        name, label = model.__name__, model._meta.app_label
        manager = model._default_manager.name
        root = f"{name}.{manager}"
        found = [
            ("filter(), order_by(), a slice", f'{root}.filter(pk__gt=0).order_by("-pk")[:10]'),
            ("values_list()", f'{root}.values_list("pk", flat=True)[:10]'),
            ("count()", f"{root}.count()"),
            ("delete(), compiled only", f"{root}.filter(pk=0).delete()"),
        ]
        relations = [f.name for f in model._meta.concrete_fields if f.many_to_one]
        if relations:
            found.insert(1, ("select_related()", f'{root}.select_related("{relations[0]}")[:10]'))
        return [(title, text, label) for title, text in found]
    return []


# The pipeline ------------------------------------------------------------------------


def refusal(exc: PlaygroundError) -> dict[str, Any]:
    """A refused expression: the message, and the text cut around the part at fault
    (which the template marks)."""
    text = exc.text
    limit = MAX_LENGTH + ECHO_PAST_LIMIT
    start, end = min(exc.start, limit), min(exc.end, limit)
    return {
        "message": exc.message,
        "before": text[:start],
        "fault": text[start:end],
        "after": text[end:limit],
        "cut": max(0, len(text) - limit),
        "line": exc.line,
        "column": exc.column,
    }


STAGE_TITLES = (
    ("model", "Model"),
    ("manager", "Manager"),
    ("queryset", "QuerySet"),
    ("query", "Query"),
    ("compiler", "SQLCompiler"),
    ("backend", "Backend"),
)


def pipeline_view(pipeline: Pipeline) -> dict[str, Any]:
    """What the template shows of an unfolded expression."""
    vendor = pipeline.vendor
    manager = pipeline.manager
    queryset_class = manager["queryset_class"]
    steps = [
        {
            "code": step.code,
            "method": step.method,
            "queryset_class": step.queryset_class,
            "build_ms": step.build_ms,
            "changes": [
                {
                    "key": change.key,
                    "text": change.text,
                    "before": _json(change.before),
                    "after": _json(change.after),
                }
                for change in step.changes
            ],
            "sql": _statement(step.compiled, vendor),
            "link": djangosource.call_link(step.queryset_class, step.code),
        }
        for step in pipeline.steps
    ]
    statements = [_statement(item, vendor) for item in pipeline.statements]
    terminal = pipeline.terminal
    if terminal is not None:
        terminal = {
            **terminal,
            "link": djangosource.link(
                pipeline.steps[-1].queryset_class if pipeline.steps else queryset_class,
                terminal["method"],
            ),
        }
    final = pipeline.statements[-1] if pipeline.statements else None
    compilers = sorted({item.compiler for item in pipeline.statements if item.compiler})
    return {
        "alias": pipeline.alias,
        "vendor": vendor,
        "kind": pipeline.kind,
        "code": pipeline.code,
        "model": pipeline.model,
        "manager": {
            **{key: item for key, item in manager.items() if key != "compiled"},
            "sql": _statement(manager["compiled"], vendor),
            "link": djangosource.link(manager["class"], "get_queryset"),
        },
        "steps": steps,
        "terminal": terminal,
        "statements": statements,
        "notes": pipeline.notes,
        "stages": _stages(pipeline, compilers, final),
    }


def _stages(
    pipeline: Pipeline, compilers: list[str], final: Compiled | None
) -> list[dict[str, str]]:
    """The six stages as the statement view's boxes: each with one line of what it is
    here."""
    calls = len(pipeline.steps)
    state = (final.state if final is not None else None) or {}
    query = state.get("class") or (final.query if final is not None else None) or "Query"
    joins = max(0, len(state.get("tables") or []) - 1)
    count = len(pipeline.statements)
    if pipeline.kind == "write":
        backend = "not sent: a write is compiled, never run here"
    else:
        backend = "not sent: compiling needs no database round trip"
    gists = {
        "model": f"{pipeline.model['label']} · table {pipeline.model['table']}",
        "manager": f"{pipeline.manager['code']} · {pipeline.manager['class'].rsplit('.', 1)[-1]}",
        "queryset": f"{calls} chained call{'' if calls == 1 else 's'}"
        + (f", then {pipeline.terminal['code']}" if pipeline.terminal else ""),
        "query": f"{query} · {joins} join{'' if joins == 1 else 's'}",
        "compiler": ", ".join(path.rsplit(".", 1)[-1] for path in compilers)
        if count and compilers
        else "no statement",
        "backend": backend,
    }
    return [
        {
            "name": name,
            "title": title,
            "gist": gists[name],
            "anchor": "statements" if name in ("query", "compiler") else name,
        }
        for name, title in STAGE_TITLES
    ]


def _statement(item: Compiled, vendor: str) -> dict[str, Any]:
    """One compiled statement: its SQL formatted and highlighted, params, compiler and
    the Query's state as the statement view shows it."""
    state = query_view(item.state or {})
    if state:
        state["links"] = djangosource.query_part_links(item.query)
    return {
        "purpose": item.purpose,
        "html": sqldisplay.highlight(item.sql, vendor=vendor) if item.sql else None,
        "params": params_rows(item.params),
        "compiler": item.compiler,
        "compiler_link": djangosource.link(item.compiler, "as_sql"),
        "query": item.query,
        "view": state,
        "note": item.note,
    }


def _json(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False, default=str)


# Running -----------------------------------------------------------------------------


def run_view(result: RunResult) -> dict[str, Any]:
    """What the template shows of a run: rows, the time of each stage of each statement
    (with links to the stored trace), the EXPLAIN."""
    data = result.trace or {}
    trace_id = data.get("id")
    stored = isinstance(trace_id, str) and get_store().get(trace_id) is not None
    statements = [item for item in data.get("statements") or [] if isinstance(item, dict)]
    timings = []
    for timing in result.timings:
        index = timing["index"]
        statement = statements[index] if 0 <= index < len(statements) else {}
        timeline = timeline_of(
            {name: (statement.get("stages") or {}).get(name) for name, _ in STAGE_TITLES}
        )
        total = sum(ms for _, _, ms in timeline)
        timings.append(
            {
                **timing,
                "number": index + 1,
                "parts": time_parts(timeline, total),
                "total_ms": total,
                "link": reverse("tracer:statement", args=[trace_id, index]) if stored else None,
            }
        )
    return {
        "ran": result.ran,
        "columns": result.columns,
        "rows": [[_cell(cell) for cell in row] for row in result.rows],
        "truncated": result.truncated,
        "value": result.value,
        "error": result.error,
        "timed_out": result.timed_out,
        "timings": timings,
        "trace_link": reverse("tracer:trace", args=[trace_id]) if stored else None,
        "explain": _explained(result),
        "run_ms": result.run_ms,
        "notes": result.notes,
        "legend": [(key, label) for key, _, _, label in PARTS],
    }


def _cell(cell: Any) -> dict[str, Any]:
    if cell is None:
        return {"text": "NULL", "null": True}
    if isinstance(cell, (list, dict)):
        return {"text": json.dumps(cell, ensure_ascii=False), "null": False}
    return {"text": str(cell), "null": False}


def _explained(result: RunResult) -> dict[str, Any] | None:
    """The plan as ``_explain.html`` shows it (the statement view's template)."""
    if result.explain is not None:
        data = result.explain
        plan = Plan(
            vendor=data["vendor"],
            sql=data["sql"],
            command=data["command"],
            analyzed=data["analyzed"],
            root=_node(data["root"]),
            raw=data["raw"],
        )
        return {"error": None, "plan": plan_view(plan)}
    if result.explain_error is not None:
        return {"error": result.explain_error, "plan": None}
    return None


def _node(data: dict[str, Any]) -> PlanNode:
    return PlanNode(
        label=data["label"],
        detail=data["detail"],
        children=[_node(child) for child in data["children"]],
        warnings=list(data["warnings"]),
    )
