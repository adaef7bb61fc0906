"""The playground page: an expression compiled as you type (a GET, page or fragment),
refusals pointing at the part at fault, and Run (a CSRF-protected POST) on the three
engines, with rows, timings and EXPLAIN; writes compiled, never executed."""

from __future__ import annotations

import datetime
import html
import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import OperationalError, connections
from django.template.loader import render_to_string
from django.test import Client, override_settings

from demo_app.models import Author, Book, Publisher, Tag
from tests.playground.test_unfold import COMPILERS, EXAMPLE, EXAMPLE_SQL
from tests.views.conftest import ESCAPED, HOSTILE
from tracer import sqldisplay
from tracer.guard import no_queries
from tracer.playground import PlaygroundError
from tracer.store import get_store
from tracer.views.playground import DEMO_EXAMPLES, _project_examples, refusal

pytestmark = pytest.mark.django_db(databases="__all__")

PAGE = "/__tracer__/playground/"
RUN = "/__tracer__/playground/run/"
COMMANDS = {
    "sqlite": "EXPLAIN QUERY PLAN",
    "postgresql": "EXPLAIN (FORMAT JSON)",
    "mysql": "EXPLAIN FORMAT=JSON",
}


def compile_(client: Client, q: str, htmx: bool = False, **params: str) -> Any:
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.get(PAGE, {"q": q, "app": "demo_app", **params}, **headers)


def run(client: Client, q: str, db: str = "default", htmx: bool = True) -> str:
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post(RUN, {"q": q, "db": db, "app": "demo_app"}, **headers)
    assert response.status_code == 200
    return response.content.decode()


def bookstore(alias: str = "default") -> list[Book]:
    ann = Author.objects.using(alias).create(name="Ann")
    bob = Author.objects.using(alias).create(name="Bob")
    house = Publisher.objects.using(alias).create(name="House")
    return [
        Book.objects.using(alias).create(
            title=title,
            author=author,
            publisher=house,
            price=Decimal(price),
            published=datetime.date(2020, month, 1),
        )
        for title, author, price, month in (
            ("One", ann, "5", 1),
            ("Two", ann, "8", 3),
            ("Three", bob, "20", 2),
        )
    ]


def same(fragment: str) -> str:
    """HTML without what changes from one response to the next: CSRF tokens and
    measured times."""
    fragment = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", fragment)
    return re.sub(r"\d+\.\d{3} ms", "", fragment)


# Compiling -----------------------------------------------------------------------------


def test_the_empty_page_has_the_form_and_the_examples(client):
    response = client.get(PAGE)

    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page
    assert 'hx-get="/__tracer__/playground/" hx-target="#tracer-playground-result"' in page
    assert "input changed delay:400ms from:#tracer-playground-q" in page
    assert '<textarea id="tracer-playground-q" name="q"' in page
    for alias in connections:
        assert f'<option value="{alias}"' in page
    assert '<p class="tracer-empty">Type an expression, or pick an example.</p>' in page
    for title, expression in DEMO_EXAMPLES:
        link = html.escape(PAGE + "?" + urlencode({"q": expression, "app": "demo_app"}))
        assert (
            f'<li><a href="{link}" title="{html.escape(expression)}">{html.escape(title)}</a></li>'
        ) in page
    # The nav of every page leads here and to the backends.
    assert '<a href="/__tracer__/playground/">Playground</a>' in page
    assert '<a href="/__tracer__/backends/">Backends</a>' in page


def test_every_example_compiles(client):
    for _, expression in DEMO_EXAMPLES:
        page = compile_(client, expression).content.decode()
        assert "tracer-playground-refusal" not in page, expression
        assert "Its path through the ORM" in page


def test_a_project_without_the_demo_gets_examples_over_its_own_models(client):
    examples = _project_examples()

    # tests.testapp's Author is the first model outside Django (and has no relation).
    assert examples == [
        (
            "filter(), order_by(), a slice",
            'Author.objects.filter(pk__gt=0).order_by("-pk")[:10]',
            "testapp",
        ),
        ("values_list()", 'Author.objects.values_list("pk", flat=True)[:10]', "testapp"),
        ("count()", "Author.objects.count()", "testapp"),
        ("delete(), compiled only", "Author.objects.filter(pk=0).delete()", "testapp"),
    ]
    for _, expression, app in examples:
        page = compile_(client, expression, app=app).content.decode()
        assert "tracer-playground-refusal" not in page, expression


def test_compiled_as_a_page_and_as_a_fragment(client):
    page = compile_(client, EXAMPLE)
    fragment = compile_(client, EXAMPLE, htmx=True)

    assert page.status_code == fragment.status_code == 200
    assert "<html" in page.content.decode()
    assert "<html" not in fragment.content.decode()
    assert same(fragment.content.decode()) in same(page.content.decode())
    link = PAGE + "?" + urlencode({"q": EXAMPLE, "app": "demo_app"})
    # The address bar follows: a compiled expression can be bookmarked and shared.
    assert fragment["HX-Replace-Url"] == link
    assert f'<a href="{html.escape(link)}">Link to this expression</a>' in page.content.decode()
    assert page["Vary"] == fragment["Vary"] == "HX-Request, Cookie"
    # The textarea holds the expression (a newline first, which browsers drop).
    assert f"\n{html.escape(EXAMPLE)}</textarea>" in page.content.decode()


def test_the_pipeline_step_by_step(client):
    page = compile_(client, EXAMPLE, htmx=True).content.decode()

    # The six stages at a glance, as the statement view draws them.
    gists = re.findall(
        r'<span class="tracer-stage-name">([^<]+)</span>\s*'
        r'<span class="tracer-stage-gist">([^<]+)',
        page,
    )
    assert [(name, html.unescape(gist)) for name, gist in gists] == [
        ("Model", "demo_app.Book · table demo_app_book"),
        ("Manager", "Book.objects · Manager"),
        ("QuerySet", "4 chained calls"),
        ("Query", "Query · 1 join"),
        ("SQLCompiler", "SQLCompiler"),
        ("Backend", "not sent: compiling needs no database round trip"),
    ]
    calls = re.findall(r'<code class="tracer-call-code">([^<]+)</code>', page)
    assert [html.unescape(call) for call in calls] == [
        '.filter(author__name__startswith="A")',
        '.select_related("author")',
        '.order_by("-published")',
        "[:10]",
    ]
    changes = re.findall(r'<dt>([a-z_]+)</dt><dd><pre class="tracer-change">([^<]*)</pre>', page)
    assert [(key, html.unescape(change)) for key, change in changes] == [
        (
            "tables",
            "+ INNER JOIN demo_app_author ON demo_app_book.author_id = demo_app_author.id "
            "(via author)",
        ),
        ("where", "demo_app_author.name startswith ?"),
        ("select_related", "author"),
        ("order_by", "-published"),
        ("high_mark", "10"),
    ]
    where = {
        "connector": "AND",
        "negated": False,
        "children": [{"lookup": "startswith", "lhs": "demo_app_author.name", "rhs": "?"}],
    }
    # The same changes as a diff of the Query's state.
    assert (
        '<tr><th scope="row"><code>where</code></th><td class="tracer-diff-before"><code>'
        '(none)</code></td><td class="tracer-diff-after"><code>'
        f"{html.escape(json.dumps(where))}</code></td></tr>"
    ) in page
    assert (
        '<tr><th scope="row"><code>high_mark</code></th><td class="tracer-diff-before"><code>'
        '(none)</code></td><td class="tracer-diff-after"><code>10</code></td></tr>'
    ) in page
    # The final SQL, formatted and highlighted as the statement view shows it, and
    # its params.
    final = sqldisplay.highlight(EXAMPLE_SQL["sqlite"], vendor="sqlite")
    assert f'<pre class="tracer-sql tracer-sql-block"><code>{final}</code></pre>' in page
    assert (
        "<tbody><tr><td>1</td><td><code>str</code></td><td><code>&#x27;A%&#x27;</code></td></tr></tbody>"
        in page
    )
    assert "<dd><code>django.db.models.sql.compiler.SQLCompiler</code>" in page
    # Each step's SQL at that point.
    assert page.count("<summary>SQL at this point</summary>") == 5


def test_each_engine_compiles_its_own_sql_without_a_round_trip(client, alias, vendor):
    connections[alias].mysql_server_data if vendor == "mysql" else None  # read once
    with no_queries():
        page = compile_(client, EXAMPLE, htmx=True, db=alias).content.decode()

    assert f"Compiled for <code>{alias}</code> ({vendor})" in page
    final = sqldisplay.highlight(EXAMPLE_SQL[vendor], vendor=vendor)
    assert f"<code>{final}</code>" in page
    assert f"<dd><code>{COMPILERS[vendor]}</code>" in page


def test_an_unknown_database_or_app_falls_back_to_the_defaults(client):
    page = compile_(client, "Tag.objects.all()", db="nope", app="nope").content.decode()

    assert "Compiled for <code>default</code> (sqlite)" in page
    assert '<option value="" selected>any app' in page


# Refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "marked", "message"),
    [
        (
            'Book.objects.filter(price__lt=5).raw("x")',
            'Book.objects.filter(price__lt=5)<mark class="tracer-fault">.raw</mark>'
            "(&quot;x&quot;)",
            "raw() runs SQL text.",
        ),
        (
            'Book.objects.filter(x=__import__("os"))',
            'Book.objects.filter(x=<mark class="tracer-fault">__import__</mark>(&quot;os&quot;))',
            "__import__: names starting with an underscore are never allowed.",
        ),
        (
            'Book.objects\n  .filter(price__lt=1)\n  .extra(where=["1"])',
            'Book.objects\n  .filter(price__lt=1)\n  <mark class="tracer-fault">.extra</mark>'
            "(where=[&quot;1&quot;])",
            "extra() writes SQL text into the query.",
        ),
    ],
    ids=["raw", "dunder", "third-line"],
)
def test_a_refusal_marks_the_part_at_fault(client, expression, marked, message):
    fragment = compile_(client, expression, htmx=True).content.decode()

    assert "<html" not in fragment
    assert f"<strong>Refused</strong>: {html.escape(message)}" in fragment
    assert f'<pre class="tracer-code"><code>{marked}</code></pre>' in fragment
    assert "Its path through the ORM" not in fragment
    assert 'name="q"' not in fragment  # nothing to run


def test_a_refusal_says_where(client):
    fragment = compile_(
        client, 'Book.objects\n  .filter(price__lt=1)\n  .extra(where=["1"])', htmx=True
    )

    assert '<span class="tracer-muted">(line 3, column 3)</span>' in fragment.content.decode()


def test_a_fault_of_no_width_is_marked_too():
    shown = refusal(PlaygroundError("Something is missing here.", "Book.objects", 12, 12))

    fragment = render_to_string("tracer/_playground_refusal.html", {"refusal": shown})

    assert (
        '<pre class="tracer-code"><code>Book.objects<mark class="tracer-fault '
        'tracer-fault-empty"></mark></code></pre>'
    ) in fragment


def test_only_whitespace_is_not_compiled(client):
    fragment = compile_(client, "  \n ", htmx=True).content.decode()

    assert (
        fragment.strip() == '<p class="tracer-empty">Type an expression, or pick an example.</p>'
    )


def test_an_expression_too_long_is_echoed_cut(client):
    expression = "Book.objects.all()" + " " * 3000
    fragment = compile_(client, expression, htmx=True).content.decode()

    assert "The expression is 3,018 characters long; at most 2,000 are accepted." in fragment
    assert f'<mark class="tracer-fault">{" " * 200}</mark></code></pre>' in fragment
    assert "And 818 more characters, not shown." in fragment


def test_hostile_input_is_shown_as_text(client):
    refused = compile_(client, HOSTILE).content.decode()
    compiled = compile_(client, f'Book.objects.filter(title="{HOSTILE}")').content.decode()

    for page in (refused, compiled):
        assert HOSTILE not in page
        assert "<script>alert" not in page
    assert '<mark class="tracer-fault">&lt;</mark>script&gt;alert(1)&lt;/script&gt;' in refused
    assert f"\n{html.escape(HOSTILE)}</textarea>" in refused
    assert f".filter(title=&quot;{ESCAPED}&quot;)" in compiled
    assert f"<code>&#x27;{ESCAPED}&#x27;</code>" in compiled  # the param


# Running -------------------------------------------------------------------------------


def test_run_on_each_engine(client, alias, vendor):
    one, two, _ = bookstore(alias)

    fragment = run(client, EXAMPLE, db=alias)

    assert "<html" not in fragment
    rows = re.findall(r"<tr>((?:<td[^>]*>[^<]*</td>)+)</tr>", fragment)
    assert [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in rows] == [
        [
            str(two.pk),
            "Two",
            str(two.author_id),
            str(two.publisher_id),
            "8.00",
            "2020-03-01",
            str(two.author_id),
            "Ann",
        ],
        [
            str(one.pk),
            "One",
            str(one.author_id),
            str(one.publisher_id),
            "5.00",
            "2020-01-01",
            str(one.author_id),
            "Ann",
        ],
    ]
    assert "<caption>2 rows</caption>" in fragment
    assert (
        '<span class="tracer-stage-gist">sent by Run: 1 statement, rolled back</span>'
    ) in fragment
    # The run is a stored trace: its page, and each statement's.
    [trace] = [trace for trace in get_store().traces() if trace.label == f"playground: {EXAMPLE}"]
    assert f'<a href="/__tracer__/trace/{trace.id}/">open it</a>' in fragment
    assert f'<a href="/__tracer__/trace/{trace.id}/statement/1/">#1</a>' in fragment
    assert client.get(f"/__tracer__/trace/{trace.id}/statement/1/").status_code == 200
    # The time of each stage, measured.
    cells = re.findall(
        r'<td class="num">([^<]*)</td>', fragment.split('class="tracer-table tracer-timings"')[1]
    )
    assert cells[0] == "2"  # rows
    assert all(re.fullmatch(r"\d+\.\d{3}", cell) for cell in cells[1:5]), cells
    assert fragment.count('<span class="tracer-seg tracer-seg-') >= 4
    # The EXPLAIN, with the statement view's template.
    assert f'<p class="tracer-explain-command"><code>{COMMANDS[vendor]}</code></p>' in fragment
    assert '<ul class="tracer-plan"><li class="tracer-plan-node' in fragment


def test_a_run_select_related_is_not_reported_unused(client):
    bookstore()
    fragment = run(client, EXAMPLE)
    # The table shows the authors it joined: they were read.
    assert '<th scope="col">author.name</th>' in fragment
    [trace] = [trace for trace in get_store().traces() if trace.label == f"playground: {EXAMPLE}"]
    page = client.get(f"/__tracer__/trace/{trace.id}/").content.decode()
    assert "tracer-finding-unused" not in page


def test_run_without_javascript_returns_the_page(client):
    bookstore()

    page = run(client, "Tag.objects.all()", htmx=False)

    assert "<html" in page
    assert "<caption>0 rows</caption>" not in page
    assert '<p class="tracer-empty">No rows.</p>' in page


def test_a_value_and_a_count(client):
    bookstore()

    fragment = run(client, "Book.objects.filter(price__lt=10).count()")

    assert '<thead><tr><th scope="col">count</th></tr></thead>' in fragment
    assert "<tbody><tr><td>2</td></tr></tbody>" in fragment


def test_the_row_limit_says_more_were_not_read(client):
    for name in "abc":
        Tag.objects.create(name=name)

    with override_settings(TRACER={"PLAYGROUND_ROW_LIMIT": 2, "PLAYGROUND_TIMEOUT_MS": 500}):
        fragment = run(client, 'Tag.objects.order_by("name")')
        compiled = compile_(client, "Tag.objects.all()", htmx=True).content.decode()

    assert "<caption>2 rows, and more not shown: at most 2 are read</caption>" in fragment
    assert "each statement stopped after 500 ms, at most 2 rows read" in compiled


def test_null_and_hostile_cells_are_text(client):
    Author.objects.create(name=HOSTILE)  # and no books: a NULL title

    fragment = run(client, 'Author.objects.values("name", "books__title")')

    assert HOSTILE not in fragment
    assert f"<td>{ESCAPED}</td>" in fragment
    assert '<td class="tracer-muted">NULL</td>' in fragment


def test_an_error_while_running_is_shown(client):
    fragment = run(client, 'Book.objects.get(title="missing")')

    assert (
        '<p class="tracer-statement-error" role="alert"><strong>'
        "demo_app.models.Book.DoesNotExist</strong>: Book matching query does not exist.</p>"
    ) in fragment


@pytest.mark.parametrize(
    ("method", "expression"),
    [
        ("update", "Book.objects.filter(price__lt=100).update(price=1)"),
        ("delete", "Book.objects.all().delete()"),
        ("create", 'Author.objects.create(name="Eve")'),
        ("bulk_create", 'Tag.objects.bulk_create([Tag(name="x"), Tag(name="y")])'),
        ("get_or_create", 'Author.objects.get_or_create(name="Zed")'),
    ],
    ids=lambda value: value if "(" not in value else "",
)
def test_writes_are_compiled_never_executed(client, alias, method, expression):
    bookstore(alias)
    before = [
        list(Book.objects.using(alias).order_by("pk").values_list("pk", "price")),
        Author.objects.using(alias).count(),
        Tag.objects.using(alias).count(),
    ]

    compiled = compile_(client, expression, htmx=True, db=alias).content.decode()
    ran = run(client, expression, db=alias)

    after = [
        list(Book.objects.using(alias).order_by("pk").values_list("pk", "price")),
        Author.objects.using(alias).count(),
        Tag.objects.using(alias).count(),
    ]
    assert after == before
    assert '<button type="submit" disabled>Run</button>' in compiled
    assert "Writes are never executed" in compiled
    assert '<span class="tracer-badge tracer-badge-write">not executed</span>' in compiled
    assert "Nothing was sent: a write is compiled, never run here." in compiled
    assert f'<p class="tracer-notice">{method}() changes data: it is never run.</p>' in ran
    assert "Where the time went" not in ran


def test_run_is_a_csrf_protected_post(client):
    strict = Client(enforce_csrf_checks=True)
    page = strict.get(PAGE, {"q": "Tag.objects.all()"}).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None

    assert client.get(RUN).status_code == 405
    data = {"q": "Tag.objects.all()"}
    assert strict.post(RUN, data, HTTP_HX_REQUEST="true").status_code == 403
    allowed = strict.post(
        RUN, {**data, "csrfmiddlewaretoken": token.group(1)}, HTTP_HX_REQUEST="true"
    )
    assert allowed.status_code == 200
    # htmx sends the token as a header instead (hx-headers on <body>).
    header = strict.post(
        RUN, data, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=strict.cookies["csrftoken"].value
    )
    assert header.status_code == 200
    # Compiling is a GET: the token never goes into the address of a compiled expression.
    assert 'id="tracer-playground-form" class="tracer-playground-form" method="get"' in page
    form = page.split('id="tracer-playground-form"')[1].split("</form>")[0]
    assert "csrfmiddlewaretoken" not in form


def test_hidden_unless_the_show_callback_allows(client):
    with override_settings(DEBUG=False):
        assert compile_(client, EXAMPLE).status_code == 404
        assert client.post(RUN, {"q": EXAMPLE}).status_code == 404


def test_a_database_down_is_said_so(client, monkeypatch):
    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr("tracer.views.playground.unfold", down)
    monkeypatch.setattr("tracer.views.playground.run", down)

    compiled = compile_(client, EXAMPLE, htmx=True).content.decode()
    ran = run(client, EXAMPLE)

    for fragment in (compiled, ran):
        assert (
            '<p class="tracer-statement-error" role="alert">The database <code>default</code> '
            "could not be used: OperationalError: connection refused</p>"
        ) in fragment
