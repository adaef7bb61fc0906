"""The demo bookstore that `make demo` serves: its seed, and every pattern page, on
SQLite, PostgreSQL and MariaDB.

The bookstore is seeded once per engine for the whole module (``bookstore``), outside
any test transaction: the write pages then run as they do in the demo, in autocommit,
and the tests check that they leave the database as they found it. The demo's code
uses the "default" connection; for the other engines the module puts that engine's
connection under "default" while it runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from html import unescape as html_unescape
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
from django.urls import reverse

from demo_app.models import Author, Book, Publisher, Review, Store, Tag
from demo_app.patterns import PATTERNS, links
from demo_app.views import async_view, duplicates, raw_sql, slow_aggregate
from tests.conftest import TRACED
from tracer.store import get_store
from tracer.testing import assert_max_queries, assert_no_n_plus_one, assert_num_queries
from tracer.trace import Trace
from tracer.views import display

pytestmark = pytest.mark.urls("demo_app.urls")

#: Every page (its URL name) and the statements its pattern runs, on every engine.
STATEMENTS = {
    "books_n_plus_one": 51,
    "books_select_related": 1,
    "loop-n-plus-one-bad": 31,
    "loop-n-plus-one-fixed": 2,
    "count-per-row-bad": 21,
    "count-per-row-fixed": 1,
    "prefetch-filtered-bad": 22,
    "prefetch-filtered-fixed": 2,
    "duplicates-bad": 21,
    "duplicates-fixed": 2,
    "hydration-bad": 1,
    "hydration-fixed": 1,
    "slow-aggregate-bad": 1,
    "slow-aggregate-fixed": 1,
    "raw-sql-bad": 1,
    "raw-sql-fixed": 1,
    "bulk-writes-bad": 101,
    "bulk-writes-fixed": 4,
    "get-or-create-bad": 6,
    "get-or-create-fixed": 7,
    "async-view-example": 3,
}


@dataclass
class Bookstore:
    vendor: str
    #: What the seed command printed.
    seeded: str


@pytest.fixture(scope="module", params=sorted(TRACED))
def bookstore(
    request: pytest.FixtureRequest, django_db_setup: None, django_db_blocker: Any
) -> Iterator[Bookstore]:
    """The seeded bookstore on one engine, for the module; emptied after it."""
    vendor = request.param
    if vendor in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE[vendor])
    connection = connections[TRACED[vendor]]
    with django_db_blocker.unblock():
        # pytest-django sets up the databases that the selected marked tests use:
        # maybe not this one.
        name = connection.settings_dict["NAME"]
        made = name != connection.creation._get_test_db_name()
        if made:
            connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        default = connections["default"]
        connections["default"] = connection
        try:
            out = StringIO()
            call_command("seed", stdout=out)
            yield Bookstore(vendor, out.getvalue())
        finally:
            for model in (Review, Store, Book, Tag, Publisher, Author):
                model.objects.all().delete()
            connections["default"] = default
            if made:
                connection.creation.destroy_test_db(name, verbosity=0)


def url(name: str) -> str:
    return reverse(name, urlconf="demo_app.urls")


def statement_count(html: str) -> int:
    return int(re.search(r"<strong>(\d+)</strong> statement", html).group(1))


def summary(trace: Trace) -> dict[str, Any]:
    """What a trace's findings say, in short, as the pages show them (slow statements
    left out: they are timings)."""
    found = display.findings(trace.to_dict())
    return {
        "n_plus_ones": [(n["relation"], n["kind"], n["queries"]) for n in found["n_plus_ones"]],
        "duplicates": [group["count"] for group in found["duplicates_alone"]],
        "duplicates_in_n_plus_one": found["total"]["duplicates_in_n_plus_one"],
        "unused_eager": [(u["kind"], u["lookup"]) for u in found["unused_eager"]],
        "injection": [risk["literals"] for risk in found["injection"]],
        # An analysis that raised leaves its list empty: say so, not "nothing found".
        "failed": found["failed"],
    }


NOTHING: dict[str, Any] = {
    "n_plus_ones": [],
    "duplicates": [],
    "duplicates_in_n_plus_one": 0,
    "unused_eager": [],
    "injection": [],
    "failed": [],
}


# Migrations and the seed ----------------------------------------------------------------


@pytest.mark.django_db(databases="__all__")
def test_the_bookstore_is_migrated_on_every_engine():
    tables = {"demo_app_author", "demo_app_book", "demo_app_book_tags", "demo_app_review"}
    for vendor, alias in sorted(TRACED.items()):
        if vendor not in settings.UNAVAILABLE:
            with connections[alias].cursor() as cursor:
                found = set(connections[alias].introspection.table_names(cursor))
            assert tables <= found, vendor


def test_seed_is_deterministic_and_idempotent(bookstore, capsys):
    assert bookstore.seeded == (
        "Seeded 50 authors, 10 publishers, 1000 books, 5000 reviews, 5 stores.\n"
    )
    call_command("seed")
    assert capsys.readouterr().out == "Bookstore already seeded (1000 books).\n"
    assert (Author.objects.count(), Book.objects.count(), Review.objects.count()) == (
        50,
        1000,
        5000,
    )
    assert list(Book.objects.order_by("pk").values_list("title", "price")[:3]) == [
        ("The Night of River 0", Decimal("35.37")),
        ("The Stone of Stone 1", Decimal("10.71")),
        ("The Night of Machine 2", Decimal("8.56")),
    ]


# Every page --------------------------------------------------------------------------------


def test_the_registry_lists_every_page_once():
    names = [pattern.name(v) for pattern in PATTERNS for v in pattern.versions]
    assert names == list(STATEMENTS)
    assert [v.statements for pattern in PATTERNS for v in pattern.versions] == list(
        STATEMENTS.values()
    )
    paths = [pattern.path(v) for pattern in PATTERNS for v in pattern.versions]
    assert len(set(paths)) == len(paths) == 21


def test_the_index_links_every_page_with_what_it_should_show(client):
    html = client.get("/").content.decode()
    assert "11 ways Django code talks to its database" in html
    for pattern in PATTERNS:
        assert f'<li id="pattern-{pattern.slug}">' in html
        for version, link in links(pattern):
            assert f'<a href="{link}">{version.title}</a>' in html
    assert html.count('<td class="num">') == 21


def test_pages_name_their_icon_so_the_browser_asks_for_no_favicon(bookstore, client):
    """Else each page view adds a trace of ``GET /favicon.ico`` (404) to the list."""
    for path in ["/", *(link for pattern in PATTERNS for _v, link in links(pattern))]:
        html = client.get(path).content.decode()
        assert html.count('<link rel="icon" href="data:,">') == 1, path


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_each_page_runs_the_statements_it_says(bookstore, client, name):
    html = client.get(url(name)).content.decode()
    assert statement_count(html) == STATEMENTS[name]
    expected = STATEMENTS[name]
    assert (
        f"Expected {expected} statement{'s' if expected > 1 else ''}; "
        f"the pattern ran {expected}, as expected." in html
    )


# What the pages show ---------------------------------------------------------------------


def quoted(vendor: str, name: str) -> str:
    """A quoted table name as the page shows it (HTML-escaped)."""
    return f"`{name}`" if vendor == "mysql" else f"&quot;{name}&quot;"


@override_settings(DEBUG=True)
def test_pages_show_what_they_recorded(bookstore, client):
    assert client.get("/").status_code == 200
    n_plus_one = client.get("/books/n-plus-one/").content.decode()
    fixed = client.get("/books/select-related/").content.decode()
    assert statement_count(n_plus_one) == 51
    assert statement_count(fixed) == 1
    # escaped SQL
    assert f"INNER JOIN {quoted(bookstore.vendor, 'demo_app_author')}" in fixed


WHERE = re.compile(
    r'<td class="tracer-where">\s*<span class="tracer-trigger">([\w ]+)</span>'
    r"(?: <code>(.*?)</code>)?<br>\s*(.+?)\s*</td>",
    re.S,
)


@override_settings(DEBUG=True)
def test_pages_show_where_each_statement_came_from(bookstore, client):
    html = client.get("/books/n-plus-one/").content.decode()
    where = [(trigger, code, place) for trigger, code, place in WHERE.findall(html)]
    assert where[0] == (
        "iteration",
        "Book.objects.order_by(&#x27;title&#x27;)[:50]",
        "demo_app/book_list.html:4",
    )
    assert where[1:] == [("related", "Book.author", "demo_app/book_list.html:5")] * 50


def test_the_n_plus_one_page_says_what_it_is_and_how_to_fix_it(bookstore, client):
    with pytest.raises(AssertionError) as info:
        with assert_no_n_plus_one():
            html = client.get("/books/n-plus-one/").content.decode()
    assert str(info.value).startswith(
        "1 N+1 found:\n- 50 queries (a foreign key or one-to-one loaded for each instance: "
        "Book.author) for 50 instances at demo_app/book_list.html:5, loaded at "
        "demo_app/book_list.html:4 by Book.objects.order_by('title')[:50]. Join them into "
        "the query that loads the instances: add .select_related('author').\n"
        "  Fix: Book.objects.order_by('title').select_related('author')[:50]\n"
    )
    assert "<strong>N+1: Book.author</strong>, 50 queries for 50 instances" in html
    assert (
        "Fix: <code>Book.objects.order_by(&#x27;title&#x27;).select_related(&#x27;author&#x27;)"
        "[:50]</code>" in html
    )


def test_the_fixed_page_keeps_its_budget(bookstore, client):
    with assert_max_queries(1), assert_no_n_plus_one():
        html = client.get("/books/select-related/").content.decode()
    # No N+1 shown: no finding says "N+1:", and the summary's N+1 figure is 0.
    assert "N+1:" not in html
    assert '<div class=""><dt>N+1</dt><dd>0</dd></div>' in html


#: What the analyses find on each page (slow statements apart: they are timings).
FINDINGS = {
    "books_n_plus_one": {
        **NOTHING,
        "n_plus_ones": [("Book.author", "forward", 50)],
        # 16 authors are loaded again for another of their books.
        "duplicates_in_n_plus_one": 16,
    },
    "loop-n-plus-one-bad": {**NOTHING, "n_plus_ones": [("Book.tags", "many", 30)]},
    "count-per-row-bad": {**NOTHING, "n_plus_ones": [("Book.reviews", "count", 20)]},
    "prefetch-filtered-bad": {
        **NOTHING,
        "n_plus_ones": [("Book.reviews", "many", 20)],
        "unused_eager": [("prefetch_related", "reviews")],
    },
    "duplicates-bad": {**NOTHING, "duplicates": [20]},
    "raw-sql-bad": {**NOTHING, "injection": [["'%River%'"]]},
    "get-or-create-bad": {**NOTHING, "duplicates": [2, 2]},
    "get-or-create-fixed": {**NOTHING, "duplicates": [2]},
}


def shown_trace(html: str) -> Trace:
    """The trace a page showed: without TracerMiddleware, its own capture is the
    outermost one, kept in the store, and the page links to it."""
    trace_id = re.search(r'<a href="/__tracer__/trace/(\w+)/" id="demo-trace">', html).group(1)
    return get_store().get(trace_id)


@pytest.mark.parametrize("name", list(STATEMENTS))
@override_settings(TRACER={"SLOW_MS": 60_000})  # no timings in these findings
def test_each_page_finds_what_it_says(bookstore, client, name):
    html = client.get(url(name)).content.decode()
    trace = shown_trace(html)
    assert len(trace.statements) == STATEMENTS[name]
    assert summary(trace) == FINDINGS.get(name, NOTHING)
    no_findings = '<p class="tracer-empty" id="demo-no-findings">' in html
    assert no_findings == (name not in FINDINGS)


READS = [name for name in STATEMENTS if not name.startswith(("bulk-", "get-or-"))]


@pytest.mark.parametrize("name", READS)
def test_read_pages_run_only_queries(bookstore, client, name):
    """No transaction statements: tracer.testing counts the same as the page."""
    with assert_num_queries(STATEMENTS[name]):
        client.get(url(name))


@pytest.mark.parametrize("name", [n for n in STATEMENTS if n.endswith("fixed")])
def test_fixed_pages_have_no_n_plus_one(bookstore, client, name):
    with assert_no_n_plus_one():
        client.get(url(name))


# Writes leave the database as they found it ----------------------------------------------

#: (kind, first word of the SQL) of each statement of the write pages, per engine:
#: SQLite's BEGIN is SQL text; the other drivers begin and commit by a call.
WRITES = {
    "bulk-writes-bad": lambda begin, end: [("execute", "SELECT")] + [("execute", "INSERT")] * 100,
    "bulk-writes-fixed": lambda begin, end: [
        ("execute", "SELECT"),
        begin,
        ("execute", "INSERT"),
        end("COMMIT"),
    ],
    "get-or-create-bad": lambda begin, end: [
        begin,
        ("execute", "SELECT"),
        ("execute", "SELECT"),
        ("execute", "INSERT"),
        ("execute", "INSERT"),
        end("ROLLBACK"),
    ],
    "get-or-create-fixed": lambda begin, end: [
        begin,
        ("execute", "SELECT"),
        ("execute", "SAVEPOINT"),
        ("execute", "INSERT"),
        ("execute", "RELEASE"),
        ("execute", "SELECT"),
        end("ROLLBACK"),
    ],
}


@pytest.mark.parametrize("name", list(WRITES))
def test_write_pages_leave_the_database_as_they_found_it(bookstore, client, name):
    before = (Review.objects.count(), Tag.objects.count())
    for _ in range(2):
        html = client.get(url(name)).content.decode()
        assert (Review.objects.count(), Tag.objects.count()) == before == (5000, 8)
    begin = ("execute", "BEGIN") if bookstore.vendor == "sqlite" else ("transaction", "BEGIN")
    statements = shown_trace(html).statements
    assert [(s.kind, str(s.sql).split()[0]) for s in statements] == WRITES[name](
        begin, lambda word: ("transaction", word)
    )


def test_bulk_writes_write_what_they_say(bookstore, client):
    bad = client.get(url("bulk-writes-bad")).content.decode()
    fixed = client.get(url("bulk-writes-fixed")).content.decode()
    for html in (bad, fixed):
        assert (
            "<p>100 reviews of <em>The Night of River 0</em> written, then deleted again.</p>"
            in html
        )
    insert = shown_trace(fixed).statements[2]
    # Each INSERT returns the ids it made (RETURNING): 100 at once, or 1 at a time.
    assert (insert.kind, insert.rows_fetched) == ("execute", 100)
    assert [s.rows_fetched for s in shown_trace(bad).statements[1:]] == [1] * 100


def result_steps(html: str) -> list[str]:
    result = re.search(r'<details class="demo-result">.*?</details>', html, re.S).group(0)
    return re.findall(r"<li>(.*?)</li>", result, re.S)


def test_check_then_create_fails_where_get_or_create_does_not(bookstore, client):
    bad = client.get(url("get-or-create-bad")).content.decode()
    steps = result_steps(bad)
    assert steps[:3] == ["A checks: found False", "B checks: found False", "A creates the tag"]
    assert steps[3].startswith("B creates the tag, and fails: IntegrityError: ")
    failed = shown_trace(bad).statements[4]
    assert failed.error[0] == "django.db.utils.IntegrityError"

    fixed = client.get(url("get-or-create-fixed")).content.decode()
    assert result_steps(fixed) == [
        "A: get_or_create, created True",
        "B: get_or_create, created False, the same tag: True",
    ]
    assert all(s.error is None for s in shown_trace(fixed).statements)


# The other patterns ----------------------------------------------------------------------


def line_of(module: Any, text: str, after: str = "") -> int:
    """The first line of ``module`` that holds ``text``, past the one with ``after``."""
    with open(module.__file__) as source:
        lines = list(enumerate(source, 1))
    start = next(number for number, line in lines if after in line) if after else 0
    return next(number for number, line in lines[start:] if text in line)


def test_the_async_view_records_each_await_where_it_was_awaited(bookstore, client):
    html = client.get(url("async-view-example")).content.decode()
    line = lambda text: f"demo_app/views/async_view.py:{line_of(async_view, text)}"  # noqa: E731
    assert WHERE.findall(html) == [
        (
            "aget",
            "Author.objects.aget(name=&#x27;Author 01&#x27;)",
            line("await Author.objects.aget("),
        ),
        ("acount", "author.books.acount()", line(".acount()")),
        ("async for", "author.books.order_by(&#x27;title&#x27;)", line("async for book")),
    ]
    assert "<p>Author 01 has 20 books:</p>" in html


def test_duplicates_are_found_where_the_helper_runs_them(bookstore, client):
    html = client.get(url("duplicates-bad")).content.decode()
    where = f"demo_app/views/duplicates.py:{line_of(duplicates, 'Book.objects.aggregate(')}"
    assert f"At <code>{where}</code> ×20." in html
    assert "<strong>Duplicates</strong>: ran 20 times with the same params" in html


def ranks(html: str) -> list[tuple[str, str, str]]:
    result = re.search(r'<details class="demo-result">.*?</details>', html, re.S).group(0)
    return re.findall(
        r'<tr><td class="num">(\d+)</td><td>(.*?)</td><td class="num">([\d.]+)</td></tr>', result
    )


def test_the_slow_aggregate_and_its_fix_rank_alike(bookstore, client):
    bad = client.get(url("slow-aggregate-bad")).content.decode()
    fixed = client.get(url("slow-aggregate-fixed")).content.decode()
    assert len(ranks(bad)) == 100
    assert ranks(bad) == ranks(fixed)
    (slow,) = shown_trace(bad).statements
    assert slow.sql.count("SELECT") == 5  # the outer query and four subqueries
    assert slow.sql.count("AVG(") == 3
    (window,) = shown_trace(fixed).statements
    assert "RANK() OVER (ORDER BY" in window.sql and "GROUP BY" in window.sql
    assert window.rows_fetched == 1000


@override_settings(TRACER={"SLOW_MS": 0})
def test_a_slow_statement_is_shown_as_slow(bookstore, client):
    html = client.get(url("slow-aggregate-bad")).content.decode()
    where = f"demo_app/views/slow_aggregate.py:{line_of(slow_aggregate, 'rows = [(book.title')}"
    assert re.search(
        r"<strong>Slow</strong>: statement 1 took [\d.]+ ms in the database \(more than "
        rf'<code>TRACER\["SLOW_MS"\]</code>\), at <code>{where}</code>\.',
        html,
    )


def test_hydration_builds_instances_where_values_list_does_not(bookstore, client):
    bad = client.get(url("hydration-bad")).content.decode()
    fixed = client.get(url("hydration-fixed")).content.decode()
    result = lambda html: re.search(r'<details class="demo-result">.*?</details>', html, re.S)  # noqa: E731
    assert result(bad).group(0) == result(fixed).group(0)
    instances, tuples = (shown_trace(html).to_dict()["statements"][0] for html in (bad, fixed))
    assert instances["stages"]["model"] == {
        "label": "demo_app.Review",
        "table": "demo_app_review",
    }
    assert (
        instances["stages"]["backend"]["rows_fetched"],
        tuples["stages"]["backend"]["rows_fetched"],
    ) == (5000, 5000)
    assert instances["sql"].count("JOIN") == tuples["sql"].count("JOIN") == 2
    assert instances["sql"].count(",") == 11 and tuples["sql"].count(",") == 1


def test_raw_sql_is_seen_at_the_cursor_with_its_injection_risk(bookstore, client):
    bad = client.get(url("raw-sql-bad")).content.decode()
    fixed = client.get(url("raw-sql-fixed")).content.decode()
    rows = lambda html: re.findall(r'<tr><td class="num">(\d+)</td><td>(.*?)</td>', html)  # noqa: E731
    assert rows(bad) == rows(fixed) and len(rows(bad)) == 168
    where = f"demo_app/views/raw_sql.py:{line_of(raw_sql, 'cursor.execute(', 'def bad')}"
    (statement,) = shown_trace(bad).statements
    assert (statement.operation, statement.params) == (None, None)
    assert f"&#x27;%River%&#x27;</code>, at <code>{where}</code>." in bad
    assert (
        "Instead: <code>cursor.execute(&quot;SELECT id, title, price FROM demo_app_book WHERE "
        "title LIKE %s ORDER BY id&quot;, [&quot;%River%&quot;])</code>" in bad
    )
    assert shown_trace(fixed).statements[0].params == ["%River%"]


# The link to the tracer app --------------------------------------------------------------


@override_settings(DEBUG=True, INTERNAL_IPS=["127.0.0.1"])
def test_without_the_middleware_a_page_links_to_its_own_trace(bookstore, client):
    html = client.get("/books/n-plus-one/").content.decode()
    trace = shown_trace(html)
    assert (trace.label, len(trace.statements)) == ("GET /books/n-plus-one/", 51)
    page = client.get(f"/__tracer__/trace/{trace.id}/").content.decode()
    assert "<div><dt>Statements</dt><dd>51</dd></div>" in page


@override_settings(
    DEBUG=True,
    INTERNAL_IPS=["127.0.0.1"],
    MIDDLEWARE=["tracer.middleware.TracerMiddleware"],
)
def test_with_the_middleware_a_page_links_to_its_request(bookstore, client):
    get_store().clear()
    html = client.get(url("bulk-writes-fixed")).content.decode()
    (request,) = get_store().traces()
    assert f'<a href="/__tracer__/trace/{request.id}/" id="demo-trace">' in html
    assert request.request["view"] == "demo_app.views.bulk_writes.fixed"
    # The pattern's 4 statements, then the page's own: it counts and deletes its rows.
    words = [str(s.sql).split()[0] for s in request.statements]
    assert [word for word in words if word in ("SELECT", "DELETE")][-2:] == ["SELECT", "DELETE"]
    assert statement_count(html) == 4


# Setting up the demo on a server ---------------------------------------------------------


def test_the_demo_database_is_made_once(bookstore, capsys):
    name = connections["default"].settings_dict["NAME"]
    call_command("demo_database")
    if bookstore.vendor == "sqlite":
        assert capsys.readouterr().out == f"SQLite: {name} is made by migrate.\n"
        return
    assert capsys.readouterr().out == f"Database {name} exists.\n"
    # A database that is not there yet: made, then found.
    settings_dict = connections["default"].settings_dict
    settings_dict["NAME"] = f"{name}_demo"
    try:
        call_command("demo_database")
        call_command("demo_database")
        assert capsys.readouterr().out == (
            f"Created database {name}_demo.\nDatabase {name}_demo exists.\n"
        )
    finally:
        with connections["default"]._nodb_cursor() as cursor:
            cursor.execute(
                f"DROP DATABASE IF EXISTS {connections['default'].ops.quote_name(name + '_demo')}"
            )
        settings_dict["NAME"] = name


def test_the_statements_table_reads_as_the_tracer_apps(bookstore, client):
    """What triggered each statement is the operation's (save, bulk_create), as in the
    tracer app, and long SQL and params are cut as there."""
    html = client.get(url("bulk-writes-bad")).content.decode()
    triggers = {trigger for trigger, _code, _place in WHERE.findall(html)}
    assert "save" in triggers and "execute" not in triggers
    fixed = client.get(url("bulk-writes-fixed")).content.decode()
    cells = re.findall(r'<td><code class="tracer-params">(.*?)</code></td>', fixed, re.S)
    assert cells and max(len(html_unescape(cell)) for cell in cells) <= display.ROW_PARAMS_CHARS
    sql = re.findall(r'<td><code class="tracer-sql">(.*?)</code>', fixed, re.S)
    assert max(len(html_unescape(cell)) for cell in sql) <= display.ROW_SQL_CHARS
    assert " at 0x" not in fixed
