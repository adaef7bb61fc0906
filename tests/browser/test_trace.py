"""A trace's page in a browser: the N+1 first with its fix, the waterfall, the shapes,
and a statement opened in the drawer with its six stages, its EXPLAIN, and the
keyboard."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from tests.browser.helpers import bookstore, shot
from tests.testapp.views import BOOKS_SHOWN
from tracer.store import get_store

STATEMENTS = BOOKS_SHOWN + 1


def open_n_plus_one(page: Page) -> str:
    """Record the N+1 page, and open its trace from the list. Its id.

    The page is requested twice and the second trace shown: the first one's time is
    mostly Django loading the template."""
    bookstore()
    for _ in range(2):
        assert page.request.get("/books/n-plus-one/").ok
    trace = get_store().traces()[0]
    page.goto("/__tracer__/")
    page.get_by_role("link", name="/books/n-plus-one/").first.click()
    expect(page).to_have_url(re.compile(rf"/__tracer__/trace/{trace.id}/$"))
    assert page.evaluate("typeof htmx") == "object"
    return trace.id


def test_trace_page(page: Page):
    open_n_plus_one(page)
    expect(page.locator("h1")).to_have_text("GET /books/n-plus-one/")
    expect(page.locator("#tracer-summary dd").first).to_have_text(str(STATEMENTS))

    # The N+1 is the first finding, with its fix as code.
    finding = page.locator("#tracer-findings article").first
    expect(finding).to_have_class(re.compile(r"\btracer-finding-nplusone\b"))
    expect(finding.locator("h3")).to_have_text(
        f"N+1 Book.author: {BOOKS_SHOWN} queries for {BOOKS_SHOWN} instances"
    )
    expect(finding.locator(".tracer-fix code")).to_have_text(
        f"Book.objects.order_by('title').select_related('author')[:{BOOKS_SHOWN}]"
    )
    expect(finding).to_contain_text("testapp/books.html")

    # The waterfall: a row per statement, the loads marked as the N+1.
    waterfall = page.locator("#tracer-waterfall")
    expect(waterfall).to_be_visible()
    expect(waterfall.locator(".tracer-wf-rows > li")).to_have_count(STATEMENTS)
    expect(waterfall.locator(".tracer-wf-rows > li.tracer-wf-nplusone")).to_have_count(BOOKS_SHOWN)

    # Two shapes: the loads (the N+1, most frequent first), then the list.
    groups = page.locator("#tracer-group-rows tr")
    expect(groups).to_have_count(2)
    expect(groups.first.locator("td").first).to_have_text(str(BOOKS_SHOWN))
    expect(groups.first.locator(".tracer-badge-nplusone")).to_be_visible()
    expect(groups.nth(1).locator("td").first).to_have_text("1")
    statements = page.locator("#tracer-statement-rows tr")
    expect(statements).to_have_count(STATEMENTS)
    # A row's cells side by side, not stacked (a rule for the statement view's section
    # once matched these rows too).
    tops = statements.first.locator("td").evaluate_all(
        "cells => cells.map(cell => cell.getBoundingClientRect().top)"
    )
    assert len(tops) == 7 and len(set(tops)) == 1, tops
    shot(page, "trace-full", full_page=True)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "trace", readme="trace")


def test_statement_drawer(page: Page):
    trace_id = open_n_plus_one(page)
    drawer = page.locator("#tracer-drawer")
    expect(drawer).to_be_hidden()
    opener = page.locator("#tracer-statement-0 a.tracer-statement-link")
    # Numbered from 1 in the list, the waterfall and the drawer alike.
    expect(opener).to_have_text("#1")
    expect(page.locator("#tracer-waterfall a.tracer-statement-link").first).to_have_text("#1")
    opener.click()
    expect(drawer).to_be_visible()
    expect(drawer).to_be_focused()
    expect(drawer.locator("h2")).to_have_text("Statement #1 of 9")
    # htmx loaded the fragment in place: the address is still the trace's.
    expect(page).to_have_url(re.compile(rf"/__tracer__/trace/{trace_id}/$"))
    shot(page, "statement-drawer", readme="statement")

    # Each of the six stages opens on its details.
    stages = drawer.locator(".tracer-pipeline > li")
    expect(stages.locator(".tracer-stage-name")).to_have_text(
        ["Model", "Manager", "QuerySet", "Query", "SQLCompiler", "Backend"]
    )
    details = {
        "model": ["demo_app.Book", "demo_app_book"],
        "manager": ["Book.objects", "django.db.models.manager.Manager"],
        "queryset": [
            f"Book.objects.order_by('title')[:{BOOKS_SHOWN}]",
            "iteration",
            "testapp/books.html",
        ],
        "query": ["Query of demo_app.Book", "ORDER BY", "title", f"LIMIT {BOOKS_SHOWN}"],
        "compiler": ["django.db.models.sql.compiler.SQLCompiler"],
        "backend": ["default", "sqlite", f"{BOOKS_SHOWN} rows"],
    }
    for name, texts in details.items():
        stage = drawer.locator(f".tracer-stage-{name}")
        detail = stage.locator(".tracer-stage-detail")
        expect(detail).to_be_hidden()
        stage.locator("summary").click()
        expect(stage.locator("details")).to_have_attribute("open", "")
        expect(detail).to_be_visible()
        for text in texts:
            expect(detail).to_contain_text(text)
    # The SQL the backend ran.
    expect(drawer.locator(".tracer-sql-block").first).to_contain_text('FROM "demo_app_book"')
    shot(page, "statement-stages")

    # Escape closes the drawer and gives the focus back to the statement's link.
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(opener).to_be_focused()

    # A lazy load: a manager it was reached through, no QuerySet code of its own.
    page.locator("#tracer-statement-1 a.tracer-statement-link").click()
    expect(drawer).to_be_visible()
    expect(drawer.locator("h2")).to_have_text("Statement #2 of 9")
    queryset = drawer.locator(".tracer-stage-queryset")
    queryset.locator("summary").click()
    expect(queryset.locator(".tracer-stage-detail")).to_contain_text("Book.author")
    # The drawer's own "next" link swaps the next statement in.
    drawer.get_by_role("link", name="#3 →").click()
    expect(drawer.locator("h2")).to_have_text("Statement #3 of 9")
    drawer.get_by_role("button", name="Close").click()
    expect(drawer).to_be_hidden()


def test_explain(page: Page):
    trace_id = open_n_plus_one(page)
    page.locator("#tracer-statement-0 a.tracer-statement-link").click()
    drawer = page.locator("#tracer-drawer")
    expect(drawer.locator("h2")).to_have_text("Statement #1 of 9")
    # Only a PostgreSQL statement offers EXPLAIN ANALYZE.
    expect(drawer.get_by_role("button", name="EXPLAIN ANALYZE")).to_have_count(0)
    with page.expect_response(re.compile(r"/explain/$")) as answer:
        drawer.get_by_role("button", name="EXPLAIN", exact=True).click()
    assert answer.value.request.method == "POST"
    assert answer.value.status == 200
    plan = drawer.locator("#tracer-explain-0")
    expect(plan.locator(".tracer-explain-command")).to_have_text("EXPLAIN QUERY PLAN")
    expect(plan.locator(".tracer-plan-label")).to_have_text(
        ["QUERY PLAN", "SCAN demo_app_book", "USE TEMP B-TREE FOR ORDER BY"]
    )
    expect(plan.locator(".tracer-plan-warnings li")).to_have_text(
        ["full table scan: SCAN demo_app_book", "temporary b-tree: USE TEMP B-TREE FOR ORDER BY"]
    )
    plan.scroll_into_view_if_needed()
    shot(page, "explain")

    # The statement's own page, without the drawer, does the same.
    page.goto(f"/__tracer__/trace/{trace_id}/statement/1/")
    page.get_by_role("button", name="EXPLAIN", exact=True).click()
    expect(page.locator("#tracer-explain-0 .tracer-plan-label").nth(1)).to_have_text(
        "SCAN demo_app_book"
    )
    for name in ("model", "manager", "queryset", "query", "compiler", "backend"):
        page.locator(f".tracer-stage-{name} summary").click()
    shot(page, "statement-page", full_page=True)


@pytest.mark.django_db(transaction=True, databases=["default", "postgresql"])
def test_explain_analyze_on_postgresql(page: Page):
    if "postgresql" in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE["postgresql"])
    bookstore(using="postgresql")
    assert page.request.get("/books/on/postgresql/").ok
    (trace,) = get_store().traces()
    page.goto(f"/__tracer__/trace/{trace.id}/")
    page.locator("#tracer-statement-0 a.tracer-statement-link").click()
    drawer = page.locator("#tracer-drawer")
    expect(drawer.locator(".tracer-statement-meta")).to_contain_text("(postgresql)")
    drawer.get_by_role("button", name="EXPLAIN ANALYZE").click()
    plan = drawer.locator("#tracer-explain-0")
    expect(plan.locator(".tracer-explain-command")).to_contain_text(
        "the statement ran, these are actual times and rows"
    )
    expect(plan.locator(".tracer-plan-label").first).to_have_text("Limit")
    expect(plan.locator(".tracer-plan-label").nth(1)).to_have_text("Sort")
    expect(plan.locator(".tracer-plan-facts").first).to_contain_text("actual")
    plan.scroll_into_view_if_needed()
    shot(page, "explain-analyze")


def test_dark_scheme(dark_page: Page):
    """The pages follow the system's dark scheme."""
    page = dark_page
    open_n_plus_one(page)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = map(int, re.findall(r"\d+", background)[:3])
    assert max(red, green, blue) < 80, background
    shot(page, "trace-dark", readme="trace-dark")
    page.locator("#tracer-statement-0 a.tracer-statement-link").click()
    expect(page.locator("#tracer-drawer")).to_be_visible()
    shot(page, "statement-dark")
