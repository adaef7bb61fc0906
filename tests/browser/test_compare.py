"""Two traces compared from the list: tick two, compare, read what changed."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

import tracer
from demo_app.models import Book
from tests.browser.helpers import bookstore, shot
from tests.testapp.views import BOOKS_SHOWN


def test_compare_from_the_list(page: Page):
    bookstore()
    for path in ("/books/n-plus-one/", "/books/select-related/"):
        assert page.request.get(path).ok
    page.goto("/__tracer__/")
    rows = page.locator("#tracer-trace-rows tr")
    for path in ("/books/n-plus-one/", "/books/select-related/"):
        rows.filter(has_text=path).get_by_role("checkbox").check()

    # The ticks survive the list updating itself (hx-preserve).
    page.locator("h1").click()
    assert page.request.get("/authors/").ok
    expect(rows).to_have_count(3, timeout=10_000)
    expect(rows.get_by_role("checkbox", checked=True)).to_have_count(2)

    page.get_by_role("button", name="Compare the two ticked").click()
    expect(page).to_have_url(re.compile(r"/__tracer__/compare/\?trace=\w+&trace=\w+$"))
    expect(page.locator("h1")).to_have_text("Compare traces")
    # The earlier trace is "before".
    head = page.locator("#tracer-compare-figures thead th")
    expect(head.nth(1)).to_have_text("Before: GET /books/n-plus-one/")
    expect(head.nth(2)).to_have_text("After: GET /books/select-related/")
    statements = page.locator("#tracer-compare-figures tbody tr").first
    expect(statements.locator("th, td")).to_have_text(
        ["Statements", str(BOOKS_SHOWN + 1), "1", f"-{BOOKS_SHOWN}"]
    )
    expect(statements.locator("td").last).to_have_class(re.compile(r"\btracer-better\b"))

    # The joined query is new; the list without the join and the author loads are gone.
    shapes = page.locator("#tracer-compare-shapes")
    expect(shapes.locator(".tracer-count")).to_have_text(
        "1 new, 2 gone, 0 ran more often, 0 less often, 0 as often."
    )
    changes = shapes.locator("tbody tr")
    expect(changes.locator(".tracer-badge")).to_have_text(["new", "gone", "gone"])
    expect(changes.first.locator(".tracer-sql")).to_contain_text("INNER JOIN")
    expect(changes.nth(1).locator(".tracer-sql")).to_contain_text('FROM "demo_app_author"')
    expect(changes.nth(1).locator("td").nth(2)).to_have_text(str(BOOKS_SHOWN))
    shot(page, "compare")


def test_long_labels_keep_the_page_as_wide_as_the_window(page: Page):
    """A trace's label can be a long expression (the playground's are): the pickers
    cut it, so the page does not scroll sideways."""
    bookstore()
    for label in ("playground: " + "Book.objects.filter(title__icontains='x')" * 8, "short"):
        with tracer.capture(label):
            list(Book.objects.order_by("id")[:1])
    page.goto("/__tracer__/compare/")
    before = page.get_by_label("Before")
    expect(before.locator("option").nth(1)).to_contain_text(
        " · playground: Book.objects.filter(title__icontains='x')Book.o… · 1 statement · "
    )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "compare-long-labels")
