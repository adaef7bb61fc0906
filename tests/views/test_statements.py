"""The statement view: one recorded statement's pipeline, as a drawer and a page, and
its EXPLAIN, from real traces on the three engines."""

from __future__ import annotations

import copy
import datetime
import inspect
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import django
import pytest
from django.db import connections
from django.db.models.sql.compiler import SQLCompiler
from django.test import Client, override_settings
from django.urls import reverse
from django.utils.html import escape

import tracer
from demo_app.models import Author, Book, Publisher
from tracer.store import get_store
from tracer.views.statements import Part, time_parts, timeline_of

pytestmark = pytest.mark.django_db(databases="__all__")

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
HERE = Path(__file__)
#: This file as the pages show it: relative to the project (the current directory).
SHOWN = "tests/views/test_statements.py"


@pytest.fixture(autouse=True)
def shown(settings: Any) -> None:
    """The tracer's pages are shown to the test client (DEBUG, an internal IP)."""
    settings.DEBUG = True
    settings.INTERNAL_IPS = ["127.0.0.1"]


def line_of(marker: str) -> int:
    """The line of this file holding ``marker`` (once)."""
    lines = [n for n, text in enumerate(HERE.read_text().splitlines(), 1) if marker in text]
    return lines[0]  # the code comes first; tests name the marker after it


def shop(alias: str = "default") -> Author:
    ann = Author.objects.using(alias).create(name="Ann")
    bob = Author.objects.using(alias).create(name="Bob")
    press = Publisher.objects.using(alias).create(name="Press")
    for title, author, price in (("One", ann, "5"), ("Two", bob, "8"), ("Three", ann, "20")):
        Book.objects.using(alias).create(
            title=title,
            author=author,
            publisher=press,
            price=Decimal(price),
            published=datetime.date(2024, 5, 6),
        )
    return ann


def recorded(run: Callable[[], Any], label: str = "") -> tracer.Trace:
    with tracer.capture(label) as trace:
        run()
    assert get_store().get(trace.id) is trace
    return trace


def url(trace: tracer.Trace | str, index: int, view: str = "statement") -> str:
    trace_id = trace if isinstance(trace, str) else trace.id
    return reverse(f"tracer:{view}", args=[trace_id, index])


def page(client: Client, trace: tracer.Trace, index: int = 0, *, htmx: bool = False) -> str:
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.get(url(trace, index), **headers)
    assert response.status_code == 200
    return response.content.decode()


def stage_box(html: str, name: str) -> str:
    """The <li> of one stage (up to the next stage's, or the end of the pipeline)."""
    opening = '<li class="tracer-stage tracer-stage-'
    found = re.search(rf'{opening}{name}[" ]', html)
    assert found is not None, name
    start = found.start()
    end = html.find(opening, start + 1)
    return html[start : end if end != -1 else html.index("</ol>\n  </section>", start)]


def imported(data: dict[str, Any]) -> tracer.Trace:
    trace = tracer.Trace.from_dict(json.loads(json.dumps(data)))
    get_store().add(trace)
    return trace


# The pipeline ------------------------------------------------------------------------


def cheap_books() -> list[Book]:
    books = Book.objects.filter(price__lt=10)  # marker: lineage-filter
    books = books.select_related("author").order_by("-published")
    return list(books[:5])  # marker: lineage-trigger


def test_the_six_stages_in_order_with_what_each_was(client):
    shop()
    trace = recorded(cheap_books)

    html = page(client, trace)

    names = re.findall(r'<span class="tracer-stage-name">(\w+)</span>', html)
    assert names == ["Model", "Manager", "QuerySet", "Query", "SQLCompiler", "Backend"]
    gists = re.findall(r'<span class="tracer-stage-gist">([^<]*)</span>', html)
    assert gists == [
        "demo_app.Book · table demo_app_book",
        "Book.objects · Manager",
        "iteration · 4 calls",
        "Query · 2 tables · WHERE · ORDER BY · LIMIT",
        "SQLCompiler · multi",
        "sqlite (default) · 2 rows fetched",
    ]
    assert "skipped" not in html
    # Each stage's details are a <details> of its own, closed until asked for.
    assert html.count("<details>") == 6
    assert "<details open" not in html


def test_lineage_with_source_lines_and_the_trigger(client):
    shop()
    trace = recorded(cheap_books)

    queryset = stage_box(page(client, trace), "queryset")

    code = escape(
        "Book.objects.filter(price__lt=10).select_related('author').order_by('-published')[:5]"
    )
    assert f'<pre class="tracer-code"><code>{code}</code></pre>' in queryset
    calls = re.findall(r"<tr>\s*<td><code>([^<]*)</code>", queryset)
    assert calls == [
        ".filter(price__lt=10)",
        ".select_related(&#x27;author&#x27;)",
        ".order_by(&#x27;-published&#x27;)",
        "[:5]",
    ]
    filtered = line_of("marker: lineage-filter")
    source = "books = Book.objects.filter(price__lt=10)  # marker: lineage-filter"
    assert (
        f'<span class="tracer-path">{SHOWN}:{filtered}</span> in <code>cheap_books</code>'
        f"<br><code>{escape(source)}</code>"
    ) in queryset
    triggered = line_of("marker: lineage-trigger")
    assert "<dt>Triggered by</dt><dd><strong>iteration</strong></dd>" in queryset
    assert f'<dt>At</dt><dd><span class="tracer-path">{SHOWN}:{triggered}</span>' in queryset


def test_query_internals(client):
    shop()
    trace = recorded(cheap_books)

    query = stage_box(page(client, trace), "query")

    assert "<dt>Class</dt><dd><code>Query</code> of <code>demo_app.Book</code></dd>" in query
    assert (
        "<tr><td><code>demo_app_author</code></td><td><code>demo_app_author</code></td>"
        "<td>INNER JOIN</td><td><code>demo_app_book.author_id = demo_app_author.id</code></td>"
        "<td><code>author</code></td></tr>"
    ) in query
    assert (
        '<code>demo_app_book.price</code> <span class="tracer-operator">&lt;</span> '
        '<code>?</code> <span class="tracer-muted">(<code>__lt</code>)</span>'
    ) in query
    assert "<code>-published</code></dd>" in query
    assert "<code>LIMIT 5</code>" in query
    assert "<code>author</code></dd>" in query  # select_related
    assert "<code>&lt;all fields of demo_app.Book&gt;</code>" in query


def test_a_where_tree_with_or_and_not(client):
    shop()
    trace = recorded(
        lambda: list(
            Book.objects.exclude(title="One").filter(price__gt=1)
            | Book.objects.filter(author__name__isnull=True)
        )
    )

    query = stage_box(page(client, trace), "query")

    connectors = re.findall(r'<span class="tracer-connector">([^<]*)</span>', query)
    assert connectors[0] == "OR"
    assert "NOT AND" in connectors
    assert '<span class="tracer-operator">IS NULL</span>' in query


def test_where_the_time_went_from_the_stages_times():
    stages = {
        "queryset": {"build_ms": 1.0},
        "compiler": {"compile_ms": 2.0},
        "backend": {
            "execute_ms": 3.0,
            "fetch_ms": 1.0,
            "convert_ms": None,
            "hydrate_ms": 3.0,
        },
        "model": None,
        "manager": None,
        "query": None,
    }
    timeline = timeline_of(stages)

    assert time_parts(timeline, 10.0) == [
        Part("build", "QuerySet calls", 1.0, "10.00%"),
        Part("compile", "compiling (as_sql)", 2.0, "20.00%"),
        Part("execute", "database: execute", 3.0, "30.00%"),
        Part("fetch", "database: fetch", 1.0, "10.00%"),
        Part("hydrate", "building results", 3.0, "30.00%"),
    ]


def test_time_bars_are_shares_of_the_statements_measured_time(client):
    shop()
    data = copy.deepcopy(recorded(cheap_books).to_dict())
    stages = data["statements"][0]["stages"]
    stages["queryset"]["build_ms"] = 0.5
    stages["compiler"]["compile_ms"] = 1.5
    stages["backend"].update(execute_ms=4.0, fetch_ms=1.0, convert_ms=1.0, hydrate_ms=2.0)

    html = page(client, imported(data))

    bar = re.search(r'<div class="tracer-timebar".*?</div>', html, re.DOTALL)
    assert bar is not None
    assert re.findall(r'tracer-seg-(\w+)" style="width: ([\d.]+%)"', bar.group()) == [
        ("build", "5.00%"),
        ("compile", "15.00%"),
        ("execute", "40.00%"),
        ("fetch", "10.00%"),
        ("convert", "10.00%"),
        ("hydrate", "20.00%"),
    ]
    assert "Where the time went: 10.000 ms measured" in html
    assert (
        "<strong>5.000 ms</strong> in the database (sending the statement, reading rows back), "
        "<strong>5.000 ms</strong> in Django's Python"
    ) in html
    backend = stage_box(html, "backend")
    assert '<span class="tracer-stage-time">8.000 ms</span>' in backend
    assert re.findall(r'tracer-seg-(\w+)" style="width: ([\d.]+%)"', backend) == [
        ("execute", "40.00%"),
        ("fetch", "10.00%"),
        ("convert", "10.00%"),
        ("hydrate", "20.00%"),
    ]
    assert '<span class="tracer-stage-time">–</span>' in stage_box(html, "query")


def test_sql_params_apart_and_written_in(client):
    shop()
    trace = recorded(cheap_books)

    html = page(client, trace)

    sql = re.search(
        r'<h3 id="tracer-sql-title-0">SQL</h3>\s*<pre[^>]*><code>(.*?)</code>', html, re.S
    )
    assert sql is not None
    assert '<span class="tracer-sql-k">SELECT</span>' in sql.group(1)
    assert (
        "<tr><td>1</td><td><code>decimal.Decimal</code></td>"
        "<td><code>Decimal(&#x27;10&#x27;)</code></td></tr>"
    ) in html
    written = re.search(
        r"With the params written in</summary>\s*<pre[^>]*><code>(.*?)</code>", html, re.S
    )
    assert written is not None
    text = re.sub(r"<[^>]+>", "", written.group(1))
    assert 'WHERE "demo_app_book"."price" &lt; 10' in text
    # The compiler made exactly the statement's SQL: not shown twice.
    assert "It produced the statement's SQL and params, shown below." in html


def test_an_insert_shows_the_compilers_own_sql_and_the_insert_query(client):
    trace = recorded(lambda: Author.objects.create(name="Ann"))

    html = page(client, trace)

    query = stage_box(html, "query")
    assert "<dt>Insert</dt><dd>1 object, fields <code>name</code></dd>" in query
    compiler = stage_box(html, "compiler")
    assert '<span class="tracer-stage-gist">SQLInsertCompiler · no result</span>' in compiler
    assert "INSERT" in compiler
    assert "<td><code>&#x27;Ann&#x27;</code></td>" in compiler
    # create() made it: the ORM's own SQL for the QuerySet method, with a manager.
    assert "Author.objects.create(name=&#x27;Ann&#x27;)" in html


def test_thousands_of_params_stay_a_small_page(client):
    trace = recorded(lambda: list(Book.objects.filter(id__in=range(2000))))

    html = page(client, trace)

    assert "<tr><td>100</td><td><code>int</code></td><td><code>99</code></td></tr>" in html
    assert "<tr><td>…</td><td><code></code></td><td><code>and 1,900 more</code></td></tr>" in html
    assert "<tr><td>101</td>" not in html
    # The SQL, as sent and with the params written in, has its value list collapsed.
    assert html.count("/* ... 1,997 more */") == 2
    assert len(html) < 60_000


def test_a_query_state_that_could_not_be_described(client):
    shop()
    data = copy.deepcopy(recorded(cheap_books).to_dict())
    data["statements"][0]["stages"]["query"]["state"] = None

    html = page(client, imported(data))

    assert "<p>The Query's state could not be described.</p>" in stage_box(html, "query")


# Skipped stages ----------------------------------------------------------------------


def raw_count() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM demo_app_book WHERE title = %s", ["One"])
        cursor.fetchone()


def test_raw_sql_skips_every_stage_but_the_backend(client):
    trace = recorded(raw_count)

    html = page(client, trace)

    skipped = re.findall(
        r'<li class="tracer-stage tracer-stage-(\w+) tracer-stage-skipped">\s*'
        r'<div class="tracer-stage-box">\s*<span class="tracer-stage-name">\w+</span>\s*'
        r'<span class="tracer-stage-time">skipped</span>\s*'
        r'<span class="tracer-stage-gist">([^<]*)</span>',
        html,
    )
    assert skipped == [
        ("model", "Raw SQL (cursor.execute): no model."),
        ("manager", "Raw SQL (cursor.execute): no manager."),
        ("queryset", "Raw SQL (cursor.execute): no QuerySet."),
        ("query", "Raw SQL (cursor.execute): no Query."),
        ("compiler", "Raw SQL (cursor.execute): no compiler."),
    ]
    assert "tracer-stage-skipped" not in stage_box(html, "backend")
    assert "Not part of any ORM operation: SQL sent through a cursor." in html
    # Only the database's parts were measured.
    assert re.findall(r'<li><span class="tracer-swatch tracer-seg-(\w+)"', html) == [
        "execute",
        "fetch",
    ]


def test_save_has_no_manager_nor_queryset(client):
    author = Author.objects.create(name="Ann")
    author.name = "Anne"
    trace = recorded(author.save)

    html = page(client, trace)

    assert "tracer-stage-skipped" not in stage_box(html, "model")
    assert "No manager: the ORM made this SQL itself" in stage_box(html, "manager")
    assert "ORM SQL that is not a QuerySet your code built" in stage_box(html, "queryset")
    assert "UpdateQuery" in stage_box(html, "query")
    assert "<dt>SET</dt><dd><code>name = ?</code></dd>" in stage_box(html, "query")
    assert "SQLUpdateCompiler" in stage_box(html, "compiler")


def test_raw_queryset_has_no_compiler(client):
    shop()
    trace = recorded(lambda: list(Book.objects.raw("SELECT * FROM demo_app_book")))

    html = page(client, trace)

    assert "raw(): your SQL went to the database as written, no compiler made it." in stage_box(
        html, "compiler"
    )
    query = stage_box(html, "query")
    assert "<dt>Raw SQL</dt><dd><code>SELECT * FROM demo_app_book</code>, 0 params</dd>" in query


# Errors, findings, operations ----------------------------------------------------------


def failing() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{HOSTILE}"')


def test_an_error_and_hostile_text_render_as_text(client):
    def run() -> None:
        with pytest.raises(django.db.utils.OperationalError):
            failing()

    trace = recorded(run)

    html = page(client, trace)

    assert "<script>alert" not in html
    assert (
        '<p class="tracer-statement-error"><strong>django.db.utils.OperationalError</strong>: '
        f"no such table: {ESCAPED}</p>"
    ) in html
    assert (
        '<dt>Error</dt><dd class="tracer-error-text"><code>django.db.utils.OperationalError'
        f"</code>: no such table: {ESCAPED}</dd>"
    ) in stage_box(html, "backend")
    # pygments escapes <, > and & (quotes need no escaping in element content).
    assert f'<span class="tracer-sql-ss">"{ESCAPED}"</span>' in html


def test_hostile_sql_params_code_and_label_render_as_text(client):
    def run() -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute(f"SELECT %s, '{HOSTILE}'", [HOSTILE])
        list(Book.objects.filter(title=HOSTILE))

    trace = recorded(run, label=HOSTILE)

    raw = page(client, trace, 0)
    orm = page(client, trace, 1)

    for html in (raw, orm):
        assert "<script>alert" not in html
        assert f"<title>Statement {1 if html is raw else 2} · {ESCAPED} · tracer</title>" in html
    assert f"<td><code>&#x27;{ESCAPED}&#x27;</code></td>" in raw
    assert f"<span class=\"tracer-sql-s1\">'{ESCAPED}'</span>" in raw
    assert f"Book.objects.filter(title=&#x27;{ESCAPED}&#x27;)" in orm


def test_hostile_values_anywhere_in_an_imported_trace_render_as_text(client):
    shop()
    data = copy.deepcopy(recorded(cheap_books).to_dict())
    statement = data["statements"][0]
    statement["location"]["file"] = HOSTILE
    statement["template"] = {"name": HOSTILE, "line": 3}
    stages = statement["stages"]
    stages["model"]["label"] = HOSTILE
    stages["manager"]["class"] = HOSTILE
    stages["queryset"]["calls"][0]["code"] = HOSTILE
    stages["queryset"]["trigger_detail"] = HOSTILE
    stages["query"]["state"]["order_by"] = [HOSTILE]
    stages["query"]["state"]["where"]["children"].append(HOSTILE)
    stages["compiler"]["class"] = HOSTILE
    stages["backend"]["iterable"] = HOSTILE
    stages["backend"]["error"] = {"type": HOSTILE, "message": HOSTILE}
    data["findings"]["slow"] = [{"index": 0, "duration_ms": 1.5, "location": HOSTILE}]

    for htmx in (False, True):
        html = page(client, imported(data), htmx=htmx)

        assert "<script>alert" not in html
        assert html.count(ESCAPED) >= 12


def test_findings_that_mention_the_statement(client):
    shop()

    def loop() -> None:
        for book in Book.objects.order_by("id"):  # marker: n1-loaded
            book.author.name  # noqa: B018  marker: n1-each

    trace = recorded(loop)

    html = page(client, trace, 1)

    assert '<li class="tracer-finding tracer-finding-n_plus_one">' in html
    assert "<strong>N+1: Book.author</strong>: 3 queries for 3 instances" in html
    assert (
        "Fix: <code>" + escape("Book.objects.order_by('id').select_related('author')") + "</code>"
    ) in html
    loaded, each = line_of("marker: n1-loaded"), line_of("marker: n1-each")
    assert (
        f"3 queries for 3 instances, loaded at {SHOWN}:{loaded}; each load at {SHOWN}:{each}."
    ) in html
    others = re.findall(r'<a href="([^"]+)">#(\d)</a>', html.split("tracer-finding-n_plus_one")[1])
    assert others[:2] == [(url(trace, 2), "3"), (url(trace, 3), "4")]
    # The similar group is the N+1's statements: not listed again.
    assert "tracer-finding-similar" not in html
    # Two loads of one author are the same SQL and params.
    assert "<strong>Duplicate</strong>: The same SQL with the same params ran 2 times." in html


def test_slow_statement(client, settings):
    settings.TRACER = {"SLOW_MS": 0}
    trace = recorded(raw_count)

    html = page(client, trace)

    assert re.search(
        r"<strong>Slow</strong>: [\d.,]+ ms, over TRACER\[&#x27;SLOW_MS&#x27;\]\.", html
    )


def test_a_lazy_load_says_which_evaluation_loaded_its_instance(client):
    shop()

    def loop() -> None:
        for book in Book.objects.order_by("id")[:2]:
            book.author.name  # noqa: B018

    trace = recorded(loop)

    html = page(client, trace, 1)

    assert (
        "Part of an ORM operation: <strong>related</strong> <code>Book.author</code> of "
        "<code>Author._base_manager</code>"
    ) in html
    pk = Book.objects.order_by("id")[0].pk
    assert (
        f"A lazy load for the instance with pk <code>{pk}</code>, loaded by "
        "<strong>iteration</strong> of <code>Book.objects.order_by(&#x27;id&#x27;)[:2]</code>"
    ) in html


def test_a_lazy_load_in_a_template_says_the_template_line_that_loaded_its_instance(client):
    from django.template import engines

    shop()
    source = "<ul>\n{% for book in books %}\n<li>{{ book.author.name }}</li>\n{% endfor %}\n</ul>"

    def render() -> None:
        books = Book.objects.order_by("id")[:2]
        engines["django"].from_string(source).render({"books": books})  # render-marker

    trace = recorded(render)

    html = page(client, trace, 1)

    pk = Book.objects.order_by("id")[0].pk
    assert (
        f"A lazy load for the instance with pk <code>{pk}</code>, loaded by "
        "<strong>iteration</strong> of <code>Book.objects.order_by(&#x27;id&#x27;)[:2]</code> "
        "in template <code>&lt;unknown source&gt;</code> line 2, at "
        f'<span class="tracer-path">{SHOWN}:{line_of("# render-marker")}</span>.'
    ) in html


def test_a_prefetch_says_what_it_ran_inside(client):
    shop()
    trace = recorded(lambda: list(Author.objects.order_by("id").prefetch_related("books")))

    html = page(client, trace, 1)

    chain = re.search(r'<ol class="tracer-operation-chain">(.*?)</ol>', html, re.S)
    assert chain is not None
    assert (
        "<strong>iteration</strong> of "
        "<code>Author.objects.order_by(&#x27;id&#x27;).prefetch_related(&#x27;books&#x27;)</code>"
    ) in chain.group(1)
    assert "<strong>prefetch</strong> <code>books</code>" in html
    assert "author.books · RelatedManager" in stage_box(html, "manager")


# Drawer and page ---------------------------------------------------------------------


def test_the_drawer_is_a_fragment_and_the_page_a_page(client):
    trace = recorded(lambda: (raw_count(), raw_count(), raw_count()))

    drawer = page(client, trace, 1, htmx=True)
    full = page(client, trace, 1)

    assert "<html" not in drawer
    assert drawer.lstrip().startswith('<section class="tracer-statement"')
    assert f'<a href="{url(trace, 1)}">Open as a page</a>' in drawer
    assert (
        f'<a href="{url(trace, 0)}" rel="prev" hx-get="{url(trace, 0)}" '
        'hx-target="closest .tracer-statement" hx-swap="outerHTML">← #1</a>'
    ) in drawer
    assert full.startswith("<!doctype html>")
    assert f'<a href="{url(trace, 0)}" rel="prev">← #1</a>' in full
    assert f'<a href="{url(trace, 2)}" rel="next">#3 →</a>' in full
    assert f'<a href="{reverse("tracer:trace", args=[trace.id])}">' in full
    assert "Open as a page" not in full
    assert 'Statement #2 <span class="tracer-muted">of 3</span>' in full


def test_the_drawer_and_the_page_show_paths_relative_to_the_project(client):
    shop()

    def loop() -> None:
        for book in Book.objects.order_by("id")[:2]:  # marker: drawer-loaded
            book.author.name  # noqa: B018  marker: drawer-each

    trace = recorded(loop)

    for html in (page(client, trace, 1, htmx=True), page(client, trace, 1)):
        assert str(HERE) not in html
        paths = re.findall(r'<span class="tracer-path">([^<]*)</span>', html)
        each, loaded = line_of("marker: drawer-each"), line_of("marker: drawer-loaded")
        # The statement's place, the evaluation that loaded its instance, and (in the
        # QuerySet stage) where the lazy load was triggered.
        assert paths == [f"{SHOWN}:{each}", f"{SHOWN}:{loaded}", f"{SHOWN}:{each}"]


def test_htmx_history_restore_gets_the_page_and_responses_vary_on_htmx(client):
    trace = recorded(raw_count)

    restore = client.get(
        url(trace, 0), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    drawer = client.get(url(trace, 0), HTTP_HX_REQUEST="true")

    assert restore.content.decode().startswith("<!doctype html>")
    assert restore["Vary"] == drawer["Vary"] == "HX-Request, Cookie"


def test_first_and_last_have_no_previous_or_next(client):
    trace = recorded(lambda: (raw_count(), raw_count()))

    first, last = page(client, trace, 0), page(client, trace, 1)

    assert 'rel="prev"' not in first and 'rel="next"' in first
    assert 'rel="prev"' in last and 'rel="next"' not in last


def test_unknown_trace_and_statement_are_404_with_a_message(client):
    trace = recorded(raw_count)

    unknown = client.get(url("f" * 32, 0))
    beyond = client.get(f"/__tracer__/trace/{trace.id}/statement/2/")
    drawer = client.get(f"/__tracer__/trace/{trace.id}/statement/6/", HTTP_HX_REQUEST="true")

    assert unknown.status_code == beyond.status_code == drawer.status_code == 404
    assert (
        f"No trace &#x27;{'f' * 32}&#x27; in the store: it is unknown, or was evicted since"
    ) in unknown.content.decode()
    assert (
        f"Trace &#x27;{trace.id}&#x27; has 1 statement(s): there is no statement #2."
        in beyond.content.decode()
    )
    assert "<html" not in drawer.content.decode()
    assert "there is no statement #6." in drawer.content.decode()


def test_statements_are_numbered_from_one_in_urls_as_on_the_pages(client):
    trace = recorded(raw_count)

    assert url(trace, 0) == f"/__tracer__/trace/{trace.id}/statement/1/"
    assert url(trace, 0, "explain") == f"/__tracer__/trace/{trace.id}/statement/1/explain/"
    first = client.get(f"/__tracer__/trace/{trace.id}/statement/1/")
    assert first.status_code == 200
    assert "Statement #1" in first.content.decode()
    assert client.get(f"/__tracer__/trace/{trace.id}/statement/0/").status_code == 404
    assert client.get(f"/__tracer__/trace/{trace.id}/statement/01/").status_code == 404


def test_hidden_unless_the_show_callback_allows(client, settings):
    settings.DEBUG = False
    trace = recorded(cheap_books)

    assert client.get(url(trace, 0)).status_code == 404
    assert client.post(url(trace, 0, "explain")).status_code == 404


def test_source_links(client):
    shop()
    trace = recorded(cheap_books)

    html = page(client, trace)

    line = inspect.getsourcelines(SQLCompiler.as_sql)[1]
    assert (
        f'<a href="https://github.com/django/django/blob/{django.__version__}/django/db/'
        f'models/sql/compiler.py#L{line}" title="django/db/models/sql/compiler.py, line '
        f'{line}" rel="noopener noreferrer" target="_blank">SQLCompiler.as_sql</a>'
    ) in stage_box(html, "compiler")
    labels = {
        name: re.findall(
            r'target="_blank">([\w.]+)</a>', stage_box(html, name).split("In Django")[-1]
        )
        for name in ("model", "manager", "queryset", "query", "compiler", "backend")
    }
    assert labels == {
        "model": ["Options.contribute_to_class"],
        "manager": ["BaseManager.get_queryset"],
        "queryset": ["QuerySet.__iter__", "QuerySet._fetch_all"],
        "query": ["Query"],
        "compiler": ["SQLCompiler.as_sql", "SQLCompiler.execute_sql"],
        "backend": [
            "CursorWrapper.execute",
            "SQLiteCursorWrapper.execute",
            "SQLCompiler.apply_converters",
            "ModelIterable.__iter__",
            "Model.from_db",
        ],
    }
    # Each lineage call links to its QuerySet method; the Query's parts to theirs.
    assert 'target="_blank">QuerySet.filter</a>' in stage_box(html, "queryset")
    assert 'target="_blank">Query.add_q</a>' in stage_box(html, "query")


# EXPLAIN -----------------------------------------------------------------------------


def test_explain_on_each_engine(client, alias, vendor):
    shop(alias)
    trace = recorded(lambda: list(Book.objects.using(alias).filter(title="Two")))

    html = page(client, trace)
    assert f'hx-post="{url(trace, 0, "explain")}" hx-target="#tracer-explain-0"' in html
    assert ("EXPLAIN ANALYZE" in html) == (vendor == "postgresql")

    response = client.post(url(trace, 0, "explain"), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment
    label = {
        "sqlite": "SCAN demo_app_book",
        "postgresql": "Seq Scan on demo_app_book",
        "mysql": "ALL on `demo_app_book`",
    }[vendor]
    assert (
        f'<li class="tracer-plan-node tracer-costly">\n  <span class="tracer-plan-label">'
        f'{label}</span> <span class="tracer-badge">full table scan</span>'
    ) in fragment
    assert f"<li><strong>full table scan</strong>: <code>{label}</code></li>" in fragment
    command = {
        "sqlite": "EXPLAIN QUERY PLAN",
        "postgresql": "EXPLAIN (FORMAT JSON)",
        "mysql": "EXPLAIN FORMAT=JSON",
    }[vendor]
    assert f'<p class="tracer-explain-command"><code>{command}</code></p>' in fragment
    if vendor == "postgresql":
        assert "Filter <code>((title)::text = &#x27;Two&#x27;::text)</code>" in fragment
    if vendor == "mysql":
        assert "attached_condition <code>" in fragment


def test_explain_analyze_on_postgresql(client):
    if "postgresql" in django.conf.settings.UNAVAILABLE:
        pytest.skip(django.conf.settings.UNAVAILABLE["postgresql"])
    shop("postgresql")
    trace = recorded(lambda: list(Book.objects.using("postgresql").filter(title="Two")))

    fragment = client.post(
        url(trace, 0, "explain"), {"analyze": "1"}, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert (
        '<p class="tracer-explain-command"><code>EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)</code>'
        ": the statement ran, these are actual times and rows (planning "
    ) in fragment
    assert "actual rows <code>1</code>" in fragment


@pytest.mark.parametrize("name", ["sqlite", "mysql"])
def test_analyze_is_refused_elsewhere(client, name):
    if name in django.conf.settings.UNAVAILABLE:
        pytest.skip(django.conf.settings.UNAVAILABLE[name])
    alias = {"sqlite": "default", "mysql": "mysql"}[name]
    shop(alias)
    trace = recorded(lambda: list(Book.objects.using(alias).filter(title="Two")))

    assert "EXPLAIN ANALYZE" not in page(client, trace)
    fragment = client.post(
        url(trace, 0, "explain"), {"analyze": "1"}, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert (
        '<p class="tracer-notice" role="status">EXPLAIN ANALYZE is offered on PostgreSQL '
        f"only, not on {name}: it runs the statement (see tracer.analysis.explain).</p>"
    ) in fragment


def test_a_write_is_never_offered_nor_explained(client):
    shop()
    trace = recorded(lambda: Book.objects.filter(title="One").update(price=Decimal("6")))

    html = page(client, trace)
    fragment = client.post(url(trace, 0, "explain"), HTTP_HX_REQUEST="true").content.decode()

    assert '<p class="tracer-muted">Only a SELECT is explained, not UPDATE.</p>' in html
    assert "<button" not in html
    assert (
        '<p class="tracer-notice" role="status">Only a SELECT is explained, not UPDATE.</p>'
        in fragment
    )
    assert Book.objects.get(title="One").price == Decimal("6")


def test_an_imported_trace_is_shown_but_not_explained(client):
    shop()
    trace = imported(recorded(cheap_books).to_dict())

    html = page(client, trace)
    fragment = client.post(url(trace, 0, "explain"), HTTP_HX_REQUEST="true").content.decode()

    assert "demo_app.Book · table demo_app_book" in html
    assert "This trace was loaded from an export" in html
    assert "<button" not in html
    assert "This trace was loaded from an export" in fragment


def test_a_trace_from_the_file_store_is_explained_and_not_marked_imported(client, tmp_path):
    shop()
    with override_settings(TRACER={"STORE_PATH": str(tmp_path / "traces.sqlite3")}):
        with tracer.capture() as trace:
            cheap_books()
        store = get_store()
        assert store.flush(5)
        assert store.get(trace.id).imported  # loaded from the file's JSON
        try:
            html = page(client, trace)
            fragment = client.post(url(trace, 0, "explain"), HTTP_HX_REQUEST="true")
            head = client.get(reverse("tracer:trace", args=[trace.id])).content.decode()
        finally:
            store.close()

    assert "loaded from an export" not in html
    assert "<button" in html
    assert '<span class="tracer-plan-label">SCAN demo_app_book</span>' in fragment.content.decode()
    assert "tracer-badge-imported" not in head


def test_explain_without_javascript_returns_the_page_with_the_plan(client):
    shop()
    trace = recorded(lambda: list(Book.objects.filter(title="Two")))

    response = client.post(url(trace, 0, "explain"))

    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith("<!doctype html>")
    area = html.split(
        '<div id="tracer-explain-0" class="tracer-explain-area" aria-live="polite">'
    )[1]
    assert area.startswith('<div class="tracer-explain-result">')
    assert '<span class="tracer-plan-label">SCAN demo_app_book</span>' in area


def test_explain_of_an_unknown_trace(client):
    fragment = client.post(url("0" * 32, 0, "explain"), HTTP_HX_REQUEST="true")
    full = client.post(url("0" * 32, 0, "explain"))

    assert fragment.status_code == 200
    assert (
        f'<p class="tracer-notice" role="status">No trace &#x27;{"0" * 32}&#x27; in the store: '
        "unknown, or evicted since.</p>"
    ) in fragment.content.decode()
    assert full.status_code == 404


def test_explain_is_a_csrf_protected_post(client):
    shop()
    trace = recorded(lambda: list(Book.objects.filter(title="Two")))
    strict = Client(enforce_csrf_checks=True)

    html = strict.get(url(trace, 0)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token is not None

    assert client.get(url(trace, 0, "explain")).status_code == 405
    assert strict.post(url(trace, 0, "explain"), HTTP_HX_REQUEST="true").status_code == 403
    allowed = strict.post(
        url(trace, 0, "explain"),
        {"csrfmiddlewaretoken": token.group(1)},
        HTTP_HX_REQUEST="true",
    )
    assert allowed.status_code == 200
    assert "SCAN demo_app_book" in allowed.content.decode()
    # htmx sends the token as a header instead (hx-headers on <body>).
    header = strict.post(
        url(trace, 0, "explain"),
        HTTP_HX_REQUEST="true",
        HTTP_X_CSRFTOKEN=strict.cookies["csrftoken"].value,
    )
    assert header.status_code == 200
