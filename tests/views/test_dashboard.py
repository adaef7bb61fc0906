"""The list of recent traces (tracer/views/dashboard.py)."""

from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings

from demo_app import settings as demo_settings
from tests.views.conftest import URL, empty, n_plus_one, rows, select_related
from tracer.store import get_store
from tracer.views import dashboard

pytestmark = pytest.mark.django_db


def cells(html: str, trace_id: str) -> list[str]:
    """The text of each cell of a trace's row, tags and spaces squeezed out."""
    row = re.search(rf'<tr id="tracer-trace-{trace_id}".*?</tr>', html, re.DOTALL)
    assert row is not None
    found = re.findall(r"<td[^>]*>(.*?)</td>", row.group(), re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in found]


def test_lists_the_stored_traces_newest_first(client: Client):
    slow = n_plus_one()
    fixed = select_related()
    html = client.get(URL).content.decode()
    assert rows(html) == [fixed.id, slow.id]
    assert '<p class="tracer-count" id="tracer-count">2 traces.</p>' in html
    summary = get_store().summaries()[0][1]
    assert cells(html, slow.id)[2:] == [
        "",
        "books",
        "",
        "4",
        f"{summary['db_ms']:.2f}",
        f"{summary['orm_ms']:.2f}",
        f"{summary['duration_ms']:.2f}",
        "N+1 ×1",
    ]
    assert cells(html, fixed.id)[2:6] == ["", "books, fixed", "", "1"]
    assert cells(html, fixed.id)[-1] == ""
    assert f'<a href="/__tracer__/trace/{slow.id}/" title="books">books</a>' in html


@override_settings(MIDDLEWARE=["tracer.middleware.TracerMiddleware"])
def test_requests_show_method_path_and_status(client: Client):
    client.get("/authors/")
    client.post("/aauthors/")
    client.get("/missing/")
    html = client.get(URL).content.decode()
    missing, posted, got = rows(html)
    assert cells(html, got)[2:6] == ["GET", "/authors/", "200", "1"]
    assert cells(html, posted)[2:6] == ["POST", "/aauthors/", "200", "1"]
    assert cells(html, missing)[2:6] == ["GET", "/missing/", "404", "0"]
    assert '<span class="tracer-status tracer-status-4xx">404</span>' in html
    # The list itself was not recorded.
    assert len(get_store()) == 3


@override_settings(MIDDLEWARE=["tracer.middleware.TracerMiddleware"])
def test_filters(client: Client):
    client.get("/authors/")
    client.post("/aauthors/")
    slow = n_plus_one()
    fixed = select_related()
    assert rows(client.get(URL, {"path": "author"}).content.decode()) == rows(
        client.get(URL, {"method": "post"}).content.decode()
    ) + rows(client.get(URL, {"method": "GET"}).content.decode())
    assert rows(client.get(URL, {"path": "fixed"}).content.decode()) == [fixed.id]
    assert rows(client.get(URL, {"min": "2"}).content.decode()) == [slow.id]
    assert rows(client.get(URL, {"badge": "n_plus_ones"}).content.decode()) == [slow.id]
    assert rows(client.get(URL, {"badge": ["n_plus_ones", "slow"]}).content.decode()) == []
    html = client.get(URL, {"badge": ["n_plus_ones", "slow"]}).content.decode()
    assert "No trace matches these filters." in html
    assert '<input type="checkbox" name="badge" value="n_plus_ones" checked> N+1' in html
    assert '<input type="checkbox" name="badge" value="slow" checked> Slow' in html
    assert '<input type="checkbox" name="badge" value="duplicates"> Duplicates' in html


def test_invalid_filters_fall_back_to_the_defaults(client: Client):
    traces = [n_plus_one(), select_related()]
    html = client.get(
        URL, {"min": "many", "page": "-3", "sort": "bogus", "method": "G3T", "badge": "x"}
    ).content.decode()
    assert rows(html) == [trace.id for trace in reversed(traces)]


def test_sorting(client: Client):
    slow = n_plus_one()
    fixed = select_related()
    html = client.get(URL, {"sort": "-statements"}).content.decode()
    assert rows(html) == [slow.id, fixed.id]
    assert rows(client.get(URL, {"sort": "statements"}).content.decode()) == [fixed.id, slow.id]
    # The sorted column says so, and its link turns the order around.
    assert (
        '<th scope="col" aria-sort="descending" class="num"><a class="tracer-sort" '
        'href="/__tracer__/?sort=statements" hx-get="/__tracer__/?sort=statements" '
        'hx-target="#tracer-traces" hx-swap="outerHTML" hx-push-url="true" '
        'hx-sync="#tracer-filters:queue last">Statements '
        '<span aria-hidden="true">▼</span></a></th>'
    ) in html
    # Others sort descending first, the path ascending; the default sort is not written.
    assert 'href="/__tracer__/?sort=-db_ms"' in html
    assert 'href="/__tracer__/?sort=path"' in html
    assert 'href="/__tracer__/"' in html  # Time, newest first
    # The form carries the sort, so filtering keeps it.
    assert '<input type="hidden" name="sort" value="-statements" form="tracer-filters">' in html


def test_pages(client: Client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(dashboard, "PAGE_SIZE", 2)
    traces = [empty(f"trace {number}") for number in range(5)]
    newest = [trace.id for trace in reversed(traces)]
    first = client.get(URL, {"path": "trace"}).content.decode()
    assert rows(first) == newest[:2]
    assert "<span>Page 1 of 3</span>" in first
    assert 'href="/__tracer__/?path=trace&amp;page=2"' in first
    assert 'rel="prev"' not in first
    assert 'id="tracer-poll"' in first
    second = client.get(URL, {"path": "trace", "page": "2"}).content.decode()
    assert rows(second) == newest[2:4]
    assert 'href="/__tracer__/?path=trace" hx-get="/__tracer__/?path=trace"' in second
    assert 'href="/__tracer__/?path=trace&amp;page=3"' in second
    # Live updates only on the first page: rows would move under the reader.
    assert 'id="tracer-poll"' not in second
    # A page past the last shows the last.
    last = client.get(URL, {"path": "trace", "page": "9"}).content.decode()
    assert rows(last) == newest[4:]
    assert "<span>Page 3 of 3</span>" in last


def test_htmx_gets_the_list_alone_at_its_canonical_address(client: Client):
    slow = n_plus_one()
    response = client.get(
        URL, {"path": "bo", "method": "", "min": "", "sort": "-started_at"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert html.startswith(
        '<section id="tracer-traces" class="tracer-traces" aria-label="Traces">'
    )
    assert "<html" not in html
    assert rows(html) == [slow.id]
    assert response["HX-Push-Url"] == "/__tracer__/?path=bo"
    assert response["Vary"] == "HX-Request"


def test_history_restore_gets_the_whole_page(client: Client):
    response = client.get(URL, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert response.content.decode().startswith("<!doctype html>")
    assert not response.has_header("HX-Push-Url")


def test_polling_answers_no_content_until_the_list_changes(client: Client):
    n_plus_one()
    html = client.get(URL).content.decode()
    poll = re.search(r'<div id="tracer-poll" hidden hx-get="([^"]+)"', html)
    assert poll is not None
    assert "every 2s" in html
    address = poll.group(1).replace("&amp;", "&")
    assert re.fullmatch(r"/__tracer__/\?poll=[0-9a-f]{16}", address)
    unchanged = client.get(address, HTTP_HX_REQUEST="true")
    assert unchanged.status_code == 204
    assert unchanged.content == b""
    fixed = select_related()
    changed = client.get(address, HTTP_HX_REQUEST="true")
    assert changed.status_code == 200
    assert rows(changed.content.decode())[0] == fixed.id
    assert not changed.has_header("HX-Push-Url")  # a poll never moves the address


def test_compare_checkboxes_keep_their_state_across_updates(client: Client):
    trace = n_plus_one()
    html = client.get(URL).content.decode()
    assert (
        f'<input type="checkbox" name="trace" value="{trace.id}" form="tracer-compare" '
        f'id="tracer-pick-{trace.id}" hx-preserve="true" aria-label="Compare books">'
    ) in html
    assert '<form id="tracer-compare" method="get" action="/__tracer__/compare/">' in html


def test_hostile_labels_and_paths_are_text(client: Client):
    trace = empty("<script>alert(1)</script>")
    html = client.get(URL).content.decode()
    assert "<script>alert" not in html
    assert (
        f'<a href="/__tracer__/trace/{trace.id}/" title="&lt;script&gt;alert(1)&lt;/script&gt;">'
        "&lt;script&gt;alert(1)&lt;/script&gt;</a>"
    ) in html
    html = client.get(URL, {"path": "<script>alert(1)</script>"}).content.decode()
    assert "<script>alert" not in html
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_empty(client: Client):
    html = client.get(URL).content.decode()
    assert "No traces yet." in html
    assert '<p class="tracer-count" id="tracer-count">0 traces.</p>' in html


@override_settings(
    ROOT_URLCONF="demo_app.urls",
    MIDDLEWARE=demo_settings.MIDDLEWARE,
    TEMPLATES=demo_settings.TEMPLATES,
)
def test_the_demo_links_to_its_traces(client: Client):
    n_plus_one()
    assert '<a href="/__tracer__/" id="demo-traces">' in client.get("/").content.decode()
    html = client.get("/books/n-plus-one/").content.decode()
    request_trace = get_store().traces()[0]
    assert request_trace.label == "GET /books/n-plus-one/"
    assert f'<a href="/__tracer__/trace/{request_trace.id}/" id="demo-trace">' in html


def test_leads_to_the_playground_and_the_backends(client: Client):
    html = client.get(URL).content.decode()

    assert '<a href="/__tracer__/playground/">playground</a>' in html
    assert '<a href="/__tracer__/backends/">backend anatomy</a>' in html
