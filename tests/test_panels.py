"""The debug-toolbar panel (tracer/panels.py), through the real django-debug-toolbar:
pages requested with its middleware, the panel fetched as toolbar.js fetches it
(``djdt:render_panel`` with the request id), and its history rendered from its store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from debug_toolbar.middleware import show_toolbar_func_or_path
from debug_toolbar.store import get_store as toolbar_store
from debug_toolbar.toolbar import DebugToolbar
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.urls import include, path

from tests.testapp import views
from tests.testapp.models import Author, Book
from tracer.panels import NOT_RECORDED, PipelinePanel, show_toolbar, stats, subtitle
from tracer.store import get_store
from tracer.trace import Trace

pytestmark = pytest.mark.django_db

TOOLBAR = "debug_toolbar.middleware.DebugToolbarMiddleware"
TRACER = "tracer.middleware.TracerMiddleware"
BOOK_SQL = (
    'SELECT "testapp_book"."id", "testapp_book"."title", "testapp_book"."author_id", '
    '"testapp_book"."price" FROM "testapp_book" ORDER BY "testapp_book"."id" ASC'
)
AUTHOR_SQL = (
    'SELECT "testapp_author"."id", "testapp_author"."name" FROM "testapp_author" '
    'WHERE "testapp_author"."id" = %s LIMIT 21'
)

# A URLconf without the tracer app (pytest.mark.urls("tests.test_panels")).
urlpatterns = [
    path("books-page/", views.books_page),
    path("__debug__/", include("debug_toolbar.urls")),
]


@pytest.fixture(autouse=True)
def toolbar() -> Iterator[None]:
    """The toolbar shown (DEBUG, the test client's address internal), its middleware
    first and TracerMiddleware after it, as the README says."""
    get_store().clear()
    toolbar_store().clear()
    with override_settings(DEBUG=True, INTERNAL_IPS=["127.0.0.1"], MIDDLEWARE=[TOOLBAR, TRACER]):
        yield
    get_store().clear()
    toolbar_store().clear()


@pytest.fixture
def books() -> None:
    for number in range(3):
        author = Author.objects.create(name=f"Author {number}")
        Book.objects.create(title=f"Book {number}", author=author, price=Decimal("1.50"))


def request_id(response: HttpResponse) -> str:
    return re.search(r'data-request-id="([0-9a-f]+)"', response.content.decode()).group(1)


def nav_subtitle(response: HttpResponse) -> str:
    html = response.content.decode()
    start = html.index('id="djdt-PipelinePanel"')
    found = re.search(r"<small>(.*?)</small>", html[start : html.index("</li>", start)])
    return found.group(1) if found else ""


def panel(client: Client, response: HttpResponse) -> dict[str, Any]:
    """What toolbar.js gets when the panel is opened."""
    rendered = client.get(
        "/__debug__/render_panel/",
        {"request_id": request_id(response), "panel_id": "PipelinePanel"},
    )
    assert rendered.status_code == 200
    return rendered.json()


def stored() -> Trace:
    (trace,) = get_store().traces()
    return trace


# The subtitle ----------------------------------------------------------------------------


def test_subtitle_counts_statements_db_time_and_n_plus_ones():
    def line(statements: int, db_ms: float, n_plus_ones: int) -> str:
        summary = {"statements": statements, "db_ms": db_ms, "n_plus_ones": n_plus_ones}
        return subtitle({"summary": summary})

    assert line(51, 3.2, 1) == "51 statements, 3.20 ms DB, 1 N+1"
    assert line(1, 0.004, 0) == "1 statement, 0.00 ms DB, 0 N+1s"
    assert line(5000, 1234.5678, 2) == "5,000 statements, 1,234.57 ms DB, 2 N+1s"
    assert subtitle({}) == ""
    assert subtitle({"skipped": NOT_RECORDED}) == ""


def test_title():
    assert PipelinePanel.title == "Query pipeline"
    assert PipelinePanel.panel_id == "PipelinePanel"


# A page with an N+1 ------------------------------------------------------------------------


def test_page_nav_subtitle(client: Client, books: None):
    response = client.get("/books-page/")
    db_ms = stored().db_ms
    assert nav_subtitle(response) == f"4 statements, {db_ms:.2f} ms DB, 1 N+1"


def test_panel_shows_findings_then_statements_then_the_drawer(client: Client, books: None):
    response = client.get("/books-page/")
    shown = panel(client, response)
    trace = stored()
    html = shown["content"]
    assert shown["scripts"] == ["/static/tracer/panel.js"]
    assert html.startswith(
        '<tracer-panel data-htmx="/static/tracer/vendor/htmx-2.0.11.min.js">\n'
        '<link rel="stylesheet" href="/static/tracer/tracer.css">\n'
        '<div class="tracer tracer-panel">'
    )
    assert "<html" not in html
    order = [
        html.index('id="tracer-findings"'),
        html.index('id="tracer-statements"'),
        html.index('id="tracer-drawer"'),
    ]
    assert order == sorted(order)
    assert (
        '<h3><span class="tracer-badge tracer-badge-nplusone">N+1</span> Book.author: '
        "3 queries for 3 instances</h3>"
    ) in html
    assert (
        "Fix: <code>Book.objects.order_by(&#x27;id&#x27;).select_related(&#x27;author&#x27;)"
    ) in html
    statement = f"/__tracer__/trace/{trace.id}/statement/"
    links = re.findall(
        r'<a class="tracer-statement-link" href="([^"]+)" hx-get="([^"]+)" '
        r'hx-target="#tracer-drawer-body" aria-controls="tracer-drawer">#(\d+)</a>',
        html,
    )
    # The N+1's first load, then each row's number.
    assert links == [
        (f"{statement}{number}/", f"{statement}{number}/", str(number))
        for number in [2, 1, 2, 3, 4]
    ]
    assert (
        f'<a href="/__tracer__/trace/{trace.id}/" target="_blank" rel="noopener">'
        "Open this trace in the tracer app</a>"
    ) in html
    assert re.findall(r'<tr id="tracer-statement-(\d+)"', html) == ["0", "1", "2", "3"]
    assert html.count("tracer-badge tracer-badge-nplusone") == 4  # the finding, 3 rows
    assert BOOK_SQL.replace('"', "&quot;") in html
    assert AUTHOR_SQL.replace('"', "&quot;") in html
    assert 'id="tracer-not-mounted"' not in html
    assert 'id="tracer-order"' not in html


def test_drawer_and_next_page_come_from_the_app(client: Client, books: None):
    """The links the panel makes answer with the app's fragments."""
    response = client.get("/books-page/")
    trace = stored()
    drawer = client.get(f"/__tracer__/trace/{trace.id}/statement/2/", HTTP_HX_REQUEST="true")
    assert drawer.status_code == 200
    assert "<html" not in drawer.content.decode()
    assert "Statement #2" in drawer.content.decode()
    assert "csrfmiddlewaretoken" in drawer.content.decode()  # the EXPLAIN form's token
    assert get_store().traces() == [trace]  # the app's requests are not recorded
    assert nav_subtitle(response)


def test_more_than_a_page_of_statements(client: Client):
    author = Author.objects.create(name="Ann")
    Book.objects.bulk_create(Book(title=f"Book {n}", author=author) for n in range(120))
    response = client.get("/books-page/")
    html = panel(client, response)["content"]
    trace = stored()
    assert len(trace.statements) == 121
    assert len(re.findall(r'<tr id="tracer-statement-', html)) == 100
    more = f"/__tracer__/trace/{trace.id}/statements/?offset=100"
    assert (
        f'<a href="{more}" hx-get="{more}" hx-target="closest tr" hx-swap="outerHTML">'
        'Show the next 21</a> <span class="tracer-hint">(100 of 121 shown)</span>'
    ) in html
    rows = client.get(more, HTTP_HX_REQUEST="true").content.decode()
    assert len(re.findall(r'<tr id="tracer-statement-', rows)) == 21


def test_hostile_sql_and_params_are_text(client: Client):
    response = client.get("/hostile-page/")
    html = panel(client, response)["content"]
    assert "<script>alert" not in html
    assert "<b>bold" not in html
    assert "SELECT &#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27;, %s" in html
    assert "[&#x27;&lt;b&gt;bold&lt;/b&gt;&#x27;]" in html


# One trace per request, whatever the middleware ------------------------------------------


def test_the_panel_shows_the_middleware_trace(client: Client, books: None):
    response = client.get("/books-page/")
    trace = stored()
    assert response.wsgi_request.tracer_trace is trace
    assert trace.finished
    assert f"/__tracer__/trace/{trace.id}/" in panel(client, response)["content"]


@override_settings(MIDDLEWARE=[TOOLBAR])
def test_without_tracer_middleware_the_panel_records_the_request(client: Client, books: None):
    response = client.get("/books-page/")
    trace = stored()
    assert response.wsgi_request.tracer_trace is trace
    assert trace.label == "GET /books-page/"
    assert trace.request == {
        "method": "GET",
        "path": "/books-page/",
        "status": 200,
        "view": "tests.testapp.views.books_page",
    }
    assert [s.sql for s in trace.statements] == [BOOK_SQL] + [AUTHOR_SQL] * 3
    assert nav_subtitle(response) == f"4 statements, {trace.db_ms:.2f} ms DB, 1 N+1"
    assert f"/__tracer__/trace/{trace.id}/" in panel(client, response)["content"]


@override_settings(MIDDLEWARE=[TOOLBAR])
def test_without_tracer_middleware_a_view_that_raises(client: Client):
    client.raise_request_exception = False
    response = client.get("/broken/")
    assert response.status_code == 500
    trace = stored()
    assert trace.finished
    assert trace.request == {
        "method": "GET",
        "path": "/broken/",
        "status": 500,  # Django made the exception a response inside the toolbar
        "view": "tests.testapp.views.broken",
    }


@override_settings(MIDDLEWARE=[TRACER, TOOLBAR])
def test_tracer_middleware_before_the_toolbar(client: Client, books: None):
    """Still one trace; the panel shows it as it was when the toolbar read it, and
    says how to order the middleware."""
    response = client.get("/books-page/")
    trace = stored()
    html = panel(client, response)["content"]
    assert 'id="tracer-order"' in html
    assert "· 200" in html
    assert f"/__tracer__/trace/{trace.id}/" in html
    assert nav_subtitle(response).startswith("4 statements, ")


def test_the_tracer_pages_are_not_recorded(client: Client):
    response = client.get("/__tracer__/")
    assert get_store().traces() == []
    assert nav_subtitle(response) == ""
    assert NOT_RECORDED in panel(client, response)["content"]


def test_the_toolbar_requests_are_not_recorded(client: Client, books: None):
    response = client.get("/books-page/")
    panel(client, response)
    client.get("/__debug__/history_sidebar/", {"request_id": request_id(response)})
    assert [trace.label for trace in get_store().traces()] == ["GET /books-page/"]


# Async -------------------------------------------------------------------------------------


@pytest.mark.parametrize("middleware", [[TOOLBAR, TRACER], [TOOLBAR]])
def test_async_view(client: Client, books: None, middleware: list[str]):
    with override_settings(MIDDLEWARE=middleware):
        response = async_to_sync(AsyncClient().get)("/abooks-page/")
    trace = stored()
    assert response.asgi_request.tracer_trace is trace
    assert trace.finished
    assert trace.request == {
        "method": "GET",
        "path": "/abooks-page/",
        "status": 200,
        "view": "tests.testapp.views.abooks_page",
    }
    assert [s.sql for s in trace.statements] == [BOOK_SQL] + [AUTHOR_SQL] * 3
    assert nav_subtitle(response) == f"4 statements, {trace.db_ms:.2f} ms DB, 1 N+1"
    html = panel(client, response)["content"]
    assert "Book.author: 3 queries for 3 instances" in html


# From the store: the panel's own view and the history panel's --------------------------


def test_renders_from_the_stored_stats_alone(client: Client, books: None):
    response = client.get("/books-page/")
    shown = panel(client, response)["content"]
    get_store().clear()  # the trace evicted from the tracer's store: the panel is the same
    toolbar = DebugToolbar.fetch(request_id(response), "PipelinePanel")
    again = toolbar.get_panel_by_id("PipelinePanel")
    assert again.from_store
    assert toolbar.request is None
    assert again.enabled
    assert again.content == shown
    assert panel(client, response)["content"] == shown


def test_stored_stats_are_json(client: Client, books: None):
    response = client.get("/books-page/")
    recorded = toolbar_store().panel(request_id(response), "PipelinePanel")
    assert json.loads(json.dumps(recorded)) == recorded
    assert set(recorded) == {
        "data",
        "summary",
        "findings",
        "dropped",
        "statements_total",
        "live",
        "rows",
        "rows_page",
    }
    assert recorded["data"] == {"id": stored().id, "label": "GET /books-page/"}
    assert recorded["statements_total"] == 4
    assert [row["index"] for row in recorded["rows"]] == [0, 1, 2, 3]


def test_history_panel_switches_to_an_older_request(client: Client, books: None):
    first = client.get("/books-page/")
    client.get("/authors/")
    sidebar = client.get(
        "/__debug__/history_sidebar/",
        {"request_id": request_id(first), "exclude_history": "True"},
    ).json()
    button = sidebar["PipelinePanel"]["button"]
    assert re.search(r"<small>4 statements, [\d.]+ ms DB, 1 N\+1</small>", button)
    assert 'id="PipelinePanel"' in sidebar["PipelinePanel"]["content"]
    html = panel(client, first)["content"]
    assert "Book.author: 3 queries for 3 instances" in html


@override_settings(DEBUG_TOOLBAR_CONFIG={"IS_RUNNING_TESTS": False, "RENDER_PANELS": True})
def test_panels_rendered_in_the_page(client: Client, books: None):
    html = client.get("/books-page/").content.decode()
    assert '<script type="module" src="/static/tracer/panel.js" async></script>' in html
    assert "<tracer-panel " in html
    assert "Book.author: 3 queries for 3 instances" in html


# Without the tracer app ------------------------------------------------------------------


@pytest.mark.urls("tests.test_panels")
def test_without_the_app_statements_are_not_links(client: Client, books: None):
    response = client.get("/books-page/")
    html = panel(client, response)["content"]
    assert 'id="tracer-not-mounted"' in html
    assert "tracer-statement-link" not in html
    assert "hx-get" not in html
    assert '<td class="num">#1</td>' in html
    assert "first: #2</p>" in html


# show_toolbar --------------------------------------------------------------------------------


def test_show_toolbar_leaves_out_the_tracer_app():
    factory = RequestFactory()
    assert show_toolbar(factory.get("/books-page/"))
    assert show_toolbar(factory.get("/__debug__/render_panel/"))
    assert not show_toolbar(factory.get("/__tracer__/"))
    assert not show_toolbar(factory.get("/__tracer__/trace/abc/statement/1/"))
    with override_settings(DEBUG=False):
        assert not show_toolbar(factory.get("/books-page/"))


@pytest.fixture
def callback() -> Iterator[None]:
    # The toolbar reads its SHOW_TOOLBAR_CALLBACK once.
    show_toolbar_func_or_path.cache_clear()
    config = {"IS_RUNNING_TESTS": False, "SHOW_TOOLBAR_CALLBACK": "tracer.panels.show_toolbar"}
    with override_settings(DEBUG_TOOLBAR_CONFIG=config):
        yield
    show_toolbar_func_or_path.cache_clear()


def test_show_toolbar_as_the_callback(client: Client, books: None, callback: None):
    response = client.get("/books-page/")
    assert panel(client, response)["content"]
    trace = stored()
    drawer = client.get(f"/__tracer__/trace/{trace.id}/statement/2/", HTTP_HX_REQUEST="true")
    assert "djdt-request-id" not in drawer.headers
    assert "djdt-request-id" in response.headers


def test_stats_of_a_request_without_trace():
    request = RequestFactory().get("/")
    assert stats(request, HttpResponse()) == {"skipped": NOT_RECORDED}
