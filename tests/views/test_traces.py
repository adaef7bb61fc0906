"""One trace's page, and its paged statements and groups (tracer/views/traces.py)."""

from __future__ import annotations

import datetime
import os
import re
import sys
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection
from django.test import Client, override_settings

import tracer
from demo_app.models import Author, Book, Publisher
from tests.views.conftest import (
    ESCAPED,
    HOSTILE,
    URL,
    books,
    n_plus_one,
    rows,
    select_related,
)
from tracer.views import traces

pytestmark = pytest.mark.django_db


def page(client: Client, path: str, **headers: str) -> str:
    response = client.get(path, **headers)
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, element_id: str) -> str:
    found = re.search(rf'<(\w+)[^>]* id="{element_id}".*?</\1>', html, re.DOTALL)
    assert found is not None
    return found.group()


def test_summary(client: Client):
    trace = n_plus_one()
    html = page(client, f"{URL}trace/{trace.id}/")
    summary = section(html, "tracer-summary")
    data = trace.to_dict()
    for figure in (
        "<div><dt>Statements</dt><dd>4</dd></div>",
        f"<div><dt>Total</dt><dd>{data['duration_ms']:.2f} ms</dd></div>",
        f"<div><dt>Database</dt><dd>{data['db_ms']:.2f} ms</dd></div>",
        '<div class="tracer-figure-bad"><dt>N+1</dt><dd>1</dd></div>',
        '<div class=""><dt>Duplicate groups</dt><dd>0</dd></div>',
    ):
        assert figure in summary
    assert re.findall(r'<span class="tracer-split-(\w+)" style="width:[\d.]+%"', summary) == [
        "db",
        "orm",
        "other",
    ]
    assert "tracer-dropped" not in summary
    assert '<h1 class="tracer-title">books' in html


def test_n_plus_one_first_with_its_fix(client: Client):
    trace = n_plus_one()
    findings = section(page(client, f"{URL}trace/{trace.id}/"), "tracer-findings")
    assert (
        '<h3><span class="tracer-badge tracer-badge-nplusone">N+1</span> Book.author: '
        "3 queries for 3 instances</h3>"
    ) in findings
    assert (
        '<p class="tracer-fix">Fix: <code>Book.objects.order_by(&#x27;id&#x27;)'
        ".select_related(&#x27;author&#x27;)[:3]</code></p>"
    ) in findings
    assert "loads at <code>tests/views/conftest.py:" in findings
    # The explanation names places as the rest of the page does.
    assert re.search(
        r"<p>3 queries \(a foreign key or one-to-one loaded for each instance: Book\.author\) "
        r"for 3 instances at tests/views/conftest\.py:\d+, loaded at tests/views/conftest\.py:"
        r"\d+ by ",
        findings,
    )
    assert os.getcwd() not in findings
    assert f'href="/__tracer__/trace/{trace.id}/statement/2/"' in findings


def test_duplicates_slow_unused_prefetches_and_injection_risks(client: Client):
    books(2)
    with override_settings(TRACER={"SLOW_MS": 0}):
        with tracer.capture("everything") as trace:
            Author.objects.get(name="Author 0")
            Author.objects.get(name="Author 0")
            [author.name for author in Author.objects.prefetch_related("books")]
            with connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM demo_app_author WHERE name = 'Ann'")
        trace.to_dict()  # the findings, with this SLOW_MS
    findings = section(page(client, f"{URL}trace/{trace.id}/"), "tracer-findings")
    assert (
        '<h3><span class="tracer-badge tracer-badge-duplicate">duplicates</span> '
        "1 statement ran more than once with the same params</h3>"
    ) in findings
    assert findings.count('<article class="tracer-finding tracer-finding-slow">') == len(
        trace.statements
    )
    assert (
        '<span class="tracer-badge tracer-badge-unused">unused</span> '
        "prefetch_related('books'): 1 query, 2 rows nobody read"
    ) in findings
    assert (
        "<p>Literals: <code>&#x27;Ann&#x27;</code></p>\n"
        '    <p class="tracer-fix">Instead: <code>cursor.execute(&quot;SELECT COUNT(*) FROM '
        "demo_app_author WHERE name = %s&quot;, [&quot;Ann&quot;])</code></p>"
    ) in findings
    # In the order the UI shows them: duplicates, slow, unused, injection.
    assert re.findall(r'tracer-finding tracer-finding-(\w+)"', findings) == [
        "duplicate",
        *["slow"] * len(trace.statements),
        "unused",
        "injection",
    ]


def test_failed_analyses_are_a_notice(client: Client):
    trace = select_related()
    trace.to_dict()["findings"]["failed"] = ["n_plus_ones"]
    html = page(client, f"{URL}trace/{trace.id}/")
    assert (
        '<p class="tracer-notice" role="status" id="tracer-failed">Some analyses failed and '
        "show nothing here: n_plus_ones.</p>"
    ) in html


def test_waterfall_one_row_per_statement(client: Client):
    trace = n_plus_one()
    waterfall = section(page(client, f"{URL}trace/{trace.id}/"), "tracer-waterfall")
    marks = re.findall(r'<li class="tracer-wf-row([^"]*)" title="#(\d+) (\w+)', waterfall)
    assert marks == [
        ("", "1", "iteration"),
        (" tracer-wf-nplusone", "2", "related"),
        (" tracer-wf-nplusone", "3", "related"),
        (" tracer-wf-nplusone", "4", "related"),
    ]
    # Bars are placed on the trace's time axis, within it.
    for left, width in re.findall(
        r'class="tracer-wf-exec" style="left:([\d.]+)%;width:([\d.]+)%"', waterfall
    ):
        assert 0 <= float(left) and float(left) + float(width) <= 100.001
    assert waterfall.count('class="tracer-wf-op"') == 4


def test_waterfall_runs_past_its_rows(client: Client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("tracer.views.waterfall.ROWS", 2)
    trace = n_plus_one()
    waterfall = section(page(client, f"{URL}trace/{trace.id}/"), "tracer-waterfall")
    assert "Each row is a run of 2 consecutive statements" in waterfall
    assert re.findall(r'href="([^"]+)">#(\d+)–(\d+)</a> (\d+) statements', waterfall) == [
        (f"/__tracer__/trace/{trace.id}/statements/?offset=0", "1", "2", "2"),
        (f"/__tracer__/trace/{trace.id}/statements/?offset=2", "3", "4", "2"),
    ]


def test_groups_by_fingerprint(client: Client):
    trace = n_plus_one()
    html = page(client, f"{URL}trace/{trace.id}/")
    groups = section(html, "tracer-groups")
    assert '<span class="tracer-count">2 shapes</span>' in groups
    counts = re.findall(r'<tr class="tracer-group[^"]*">\s*<td class="num">(\d+)</td>', groups)
    assert counts == ["3", "1"]
    assert (
        '<code class="tracer-sql">SELECT &quot;demo_app_author&quot;.&quot;id&quot;, '
        "&quot;demo_app_author&quot;.&quot;name&quot; FROM &quot;demo_app_author&quot; WHERE "
        "&quot;demo_app_author&quot;.&quot;id&quot; = ? LIMIT ?</code>"
    ) in groups
    fingerprint = trace.to_dict()["findings"]["similar"][0]["fingerprint"]
    link = f"/__tracer__/trace/{trace.id}/statements/?fingerprint={fingerprint}"
    assert f'<a href="{link}">all 3</a>' in groups
    # That link lists the group's statements.
    assert rows(page(client, link), "tracer-statement-") == ["1", "2", "3"]


def test_statements_first_page_then_more(client: Client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(traces, "STATEMENTS_PAGE", 3)
    trace = n_plus_one(count=5)
    html = page(client, f"{URL}trace/{trace.id}/")
    statements = section(html, "tracer-statements")
    assert rows(statements, "tracer-statement-") == ["0", "1", "2"]
    more = f"/__tracer__/trace/{trace.id}/statements/?offset=3"
    assert (
        f'<tr class="tracer-more"><td colspan="7"><a href="{more}" hx-get="{more}" '
        'hx-target="closest tr" hx-swap="outerHTML">Show the next 3</a> '
        '<span class="tracer-hint">(3 of 6 shown)</span></td></tr>'
    ) in statements
    # htmx gets the next rows and the next "more" row.
    fragment = page(client, more, HTTP_HX_REQUEST="true")
    assert "<html" not in fragment
    assert rows(fragment, "tracer-statement-") == ["3", "4", "5"]
    assert "tracer-more" not in fragment
    # Without JavaScript the same link is a page of its own.
    whole = page(client, more)
    assert whole.startswith("<!doctype html>")
    assert rows(whole, "tracer-statement-") == ["3", "4", "5"]
    assert f'<a href="/__tracer__/trace/{trace.id}/statements/?offset=0" rel="prev">' in whole


def test_statement_rows(client: Client):
    trace = n_plus_one()
    html = page(client, f"{URL}trace/{trace.id}/statements/?offset=1", HTTP_HX_REQUEST="true")
    first = re.search(r'<tr id="tracer-statement-1".*?</tr>', html, re.DOTALL)
    assert first is not None
    statement = trace.to_dict()["statements"][1]
    backend = statement["stages"]["backend"]
    link = f"/__tracer__/trace/{trace.id}/statement/2/"
    assert first.group() == (
        '<tr id="tracer-statement-1" class="tracer-statement tracer-mark-nplusone">\n'
        f'  <td class="num"><a class="tracer-statement-link" href="{link}" hx-get="{link}" '
        'hx-target="#tracer-drawer-body" aria-controls="tracer-drawer">#2</a></td>\n'
        '  <td class="tracer-where"><span class="tracer-trigger">related</span> '
        f"<code>Book.author</code><br>tests/views/conftest.py:{statement['location']['line']} "
        '<span class="tracer-badge tracer-badge-nplusone">N+1</span></td>\n'
        '  <td><code class="tracer-sql">SELECT &quot;demo_app_author&quot;.&quot;id&quot;, '
        "&quot;demo_app_author&quot;.&quot;name&quot; FROM &quot;demo_app_author&quot; WHERE "
        "&quot;demo_app_author&quot;.&quot;id&quot; = %s LIMIT 21</code></td>\n"
        f'  <td><code class="tracer-params">[{statement["params"][0]}]</code></td>\n'
        f'  <td class="num">{backend["execute_ms"]:.3f}</td>\n'
        f'  <td class="num">{backend["fetch_ms"]:.3f}</td>\n'
        '  <td class="num">1</td>\n'
        "</tr>"
    )


def test_groups_page(client: Client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(traces, "GROUPS_PAGE", 1)
    trace = n_plus_one()
    html = page(client, f"{URL}trace/{trace.id}/")
    more = f"/__tracer__/trace/{trace.id}/groups/?offset=1"
    assert f'<a href="{more}" hx-get="{more}" hx-target="closest tr"' in html
    fragment = page(client, more, HTTP_HX_REQUEST="true")
    assert "<html" not in fragment
    assert re.findall(r'<td class="num">(\d+)</td>\s*<td><code', fragment) == ["1"]
    assert page(client, more).startswith("<!doctype html>")


def test_drawer(client: Client):
    trace = select_related()
    html = page(client, f"{URL}trace/{trace.id}/")
    assert (
        '<aside id="tracer-drawer" class="tracer-drawer" aria-label="Statement" '
        'tabindex="-1" hidden' in html
    )
    assert '<div id="tracer-drawer-body"' in html


def test_unknown_trace_is_404_on_the_tracers_page_saying_why(client: Client):
    message = (
        f"No trace &#x27;{'0' * 32}&#x27; in the store: it is unknown, or was evicted since "
        "(the store keeps the newest traces only; see TRACER[&#x27;STORE_TRACES&#x27;])."
    )
    for path in ("", "statements/", "groups/", "export/"):
        response = client.get(f"{URL}trace/{'0' * 32}/{path}")
        assert response.status_code == 404
        html = response.content.decode()
        assert f'<p class="tracer-notice">{message}</p>' in html
        assert '<a href="/__tracer__/">All traces</a>' in html
    fragment = client.get(f"{URL}trace/{'0' * 32}/statements/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 404
    assert "<html" not in fragment.content.decode()
    assert message in fragment.content.decode()


def test_hostile_statements_are_text(client: Client):
    with tracer.capture(HOSTILE) as trace:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM demo_app_author WHERE name = '{HOSTILE}'")
            cursor.execute("SELECT %s", [HOSTILE])
            with pytest.raises(DatabaseError):
                cursor.execute(f'SELECT * FROM "{HOSTILE}"')
    html = page(client, f"{URL}trace/{trace.id}/")
    assert "<script>alert" not in html
    assert f"<title>{ESCAPED} · tracer</title>" in html
    assert f'<h1 class="tracer-title">{ESCAPED}' in html
    statements = section(html, "tracer-statements")
    assert (
        '<code class="tracer-sql">SELECT COUNT(*) FROM demo_app_author WHERE name = '
        f"&#x27;{ESCAPED}&#x27;</code>"
    ) in statements
    assert f'<code class="tracer-params">[&#x27;{ESCAPED}&#x27;]</code>' in statements
    assert (
        '<div class="tracer-error-text">django.db.utils.OperationalError: no such table: '
        f"{ESCAPED}</div>"
    ) in statements
    assert f'<code class="tracer-sql">SELECT * FROM &quot;{ESCAPED}&quot;</code>' in statements
    # The injection finding quotes the literal, escaped.
    assert f"<code>&#x27;{ESCAPED}&#x27;</code>" in section(html, "tracer-findings")


@override_settings(MIDDLEWARE=["tracer.middleware.TracerMiddleware"])
def test_hostile_request_paths_are_text(client: Client):
    client.get(f"/{HOSTILE}/")
    html = client.get(URL).content.decode()
    (trace_id,) = rows(html)
    assert "<script>alert" not in html
    html = page(client, f"{URL}trace/{trace_id}/")
    assert "<script>alert" not in html
    assert f'<h1 class="tracer-title">GET /{ESCAPED}/' in html


def test_a_trace_with_odd_findings_still_shows(client: Client):
    trace = select_related()
    data = trace.to_dict()
    data["findings"] = {"n_plus_ones": "oops", "similar": [{"indexes": ["x", 99]}], "slow": [None]}
    data["operations"] = [None]
    html = page(client, f"{URL}trace/{trace.id}/")
    assert "<div><dt>Statements</dt><dd>1</dd></div>" in html


def test_an_unused_select_related_is_shown_with_its_fix(client: Client):
    books(2)
    with tracer.capture("titles") as trace:
        titles = [book.title for book in Book.objects.select_related("author").order_by("id")]
        line = sys._getframe().f_lineno - 1
    assert titles == ["Book 0", "Book 1"]

    html = page(client, f"{URL}trace/{trace.id}/")

    assert (
        '<h3><span class="tracer-badge tracer-badge-unused">unused</span> '
        "select_related('author'): joined into 2 rows, never read</h3>\n"
        '    <p class="tracer-fix">Fix: <code>Book.objects.order_by(&#x27;id&#x27;)</code></p>'
    ) in html
    assert f"at <code>tests/views/test_traces.py:{line}</code>" in html


def test_repeats_within_an_n_plus_one_count_as_part_of_it(client: Client):
    """Two authors loaded for four books: an N+1 whose loads repeat. The heading
    counts one thing to fix; the repeats are listed under the N+1's duplicates."""
    publisher = Publisher.objects.create(name="P")
    authors = [Author.objects.create(name=name) for name in ("A", "B")]
    for number in range(4):
        Book.objects.create(
            title=f"B{number}",
            author=authors[number % 2],
            publisher=publisher,
            price=Decimal("9.99"),
            published=datetime.date(2020, 1, 1),
        )
    with tracer.capture("repeats") as trace:
        for book in Book.objects.order_by("id"):
            assert book.author.name
        Author.objects.count()
        Author.objects.count()

    html = page(client, f"{URL}trace/{trace.id}/")
    # The N+1 and the counts run twice (the repeated loads are the N+1's).
    assert '<h2 id="tracer-findings-title">Findings <span class="tracer-count">2</span></h2>' in (
        html
    )
    assert "3 statements ran more than once with the same params" in html
    assert "2 of them are loads of the N+1 above" in html
    # Statements by shape: of the 4 author loads, 2 repeat an earlier one; of the 2
    # counts, 1.
    groups = page(client, f"{URL}trace/{trace.id}/groups/")
    badges = re.findall(r'tracer-badge-duplicate" title="[^"]+">(\d+) duplicates?<', groups)
    assert sorted(badges) == ["1", "2"]
