"""The list of traces in a browser: htmx loaded, filters and sorting swapped in place
with the address following, and a request made while the page is open appearing."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.helpers import bookstore, shot
from tests.testapp.views import BOOKS_SHOWN


def record(page: Page, *paths: str) -> None:
    """One recorded request per path, sent by the browser's own HTTP client."""
    for path in paths:
        response = page.request.get(path)
        assert response.ok, (path, response.status)


def test_dashboard(page: Page):
    bookstore()
    record(page, "/books/n-plus-one/", "/books/select-related/", "/authors/")
    page.goto("/__tracer__/")
    assert page.evaluate("typeof htmx") == "object"
    rows = page.locator("#tracer-trace-rows tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#tracer-count")).to_have_text("3 traces.")
    # Newest first; the N+1 page has its badge and its statements.
    expect(rows.locator(".tracer-path a")).to_have_text(
        ["/authors/", "/books/select-related/", "/books/n-plus-one/"]
    )
    n_plus_one = rows.filter(has_text="/books/n-plus-one/")
    expect(n_plus_one.locator(".tracer-badge-nplusone")).to_have_text("N+1 ×1")
    expect(n_plus_one.locator("td").nth(5)).to_have_text(str(BOOKS_SHOWN + 1))
    expect(rows.filter(has_text="/books/select-related/").locator(".tracer-badge")).to_have_count(
        0
    )
    shot(page, "dashboard", readme="dashboard", crop=True)
    page.evaluate("window.__loaded = true")  # gone if anything below reloads the page

    # Typing a path filters, after a pause, by htmx: the address follows.
    page.get_by_label("Path").fill("books")
    expect(page).to_have_url(re.compile(r"/__tracer__/\?path=books$"))
    expect(rows).to_have_count(2)
    expect(page.locator("#tracer-count")).to_have_text("2 traces match the filters.")

    # A badge filter.
    page.get_by_role("checkbox", name="N+1").check()
    expect(page).to_have_url(re.compile(r"\?path=books&badge=n_plus_ones$"))
    expect(rows.locator(".tracer-path a")).to_have_text(["/books/n-plus-one/"])
    page.get_by_role("checkbox", name="N+1").uncheck()
    page.get_by_label("Path").fill("")
    expect(page).to_have_url(re.compile(r"/__tracer__/$"))
    expect(rows).to_have_count(3)

    # Sorting: the first click on Statements sorts the most first, the second the fewest.
    statements = page.locator("th").filter(has_text="Statements")
    statements.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"\?sort=-statements$"))
    expect(statements).to_have_attribute("aria-sort", "descending")
    expect(rows.first.locator(".tracer-path a")).to_have_text("/books/n-plus-one/")
    statements = page.locator("th").filter(has_text="Statements")
    statements.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"\?sort=statements$"))
    expect(statements).to_have_attribute("aria-sort", "ascending")
    expect(rows.last.locator(".tracer-path a")).to_have_text("/books/n-plus-one/")
    assert page.evaluate("window.__loaded") is True

    # Live: a request made while the page is open appears without a reload (the list
    # polls while the focus is outside the filters and the list).
    page.locator("h1").click()
    record(page, "/books/n-plus-one/")
    expect(rows).to_have_count(4, timeout=10_000)
    expect(page.locator("#tracer-count")).to_have_text("4 traces.")
    assert page.evaluate("window.__loaded") is True
    shot(page, "dashboard-live")


def test_sorting_right_after_typing_a_path(page: Page):
    """Clicking a column after typing a path takes focus from the Path field: that
    must not refresh the list under the pointer between the press and the release,
    which would swallow the click (a person's click lasts about 100 ms)."""
    bookstore()
    record(page, "/books/n-plus-one/", "/books/select-related/", "/authors/")
    page.goto("/__tracer__/")
    page.get_by_label("Path").fill("books")
    expect(page).to_have_url(re.compile(r"/__tracer__/\?path=books$"))
    rows = page.locator("#tracer-trace-rows tr")
    expect(rows).to_have_count(2)
    link = page.locator("th").filter(has_text="Statements").get_by_role("link")
    box = link.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(300)
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"\?path=books&sort=-statements$"))
    expect(rows.first.locator(".tracer-path a")).to_have_text("/books/n-plus-one/")


def test_filtering_with_enter_logs_no_error(page: Page):
    """Enter in a field both changes it and submits the form: one request answers,
    none is cut off half-way (htmx reports an aborted request as an error)."""
    bookstore()
    record(page, "/books/n-plus-one/", "/books/select-related/", "/authors/")
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto("/__tracer__/")
    rows = page.locator("#tracer-trace-rows tr")
    expect(rows).to_have_count(3)
    field = page.get_by_label("At least")
    field.fill("2")
    field.press("Enter")
    expect(page).to_have_url(re.compile(r"\?min=2$"))
    expect(rows.locator(".tracer-path a")).to_have_text(["/books/n-plus-one/"])
    page.get_by_label("Path").fill("books")
    page.get_by_label("Path").press("Enter")
    expect(page).to_have_url(re.compile(r"\?path=books&min=2$"))
    page.wait_for_timeout(600)  # past the typing pause
    assert errors == []


def test_a_phone_wide_window_scrolls_tables_not_pages(page: Page):
    bookstore()
    record(page, "/books/n-plus-one/")
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/__tracer__/")
    expect(page.locator("#tracer-trace-rows tr")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") == 390
    page.locator("#tracer-trace-rows .tracer-path a").click()
    expect(page.locator("#tracer-findings-title")).to_contain_text("Findings")
    assert page.evaluate("document.documentElement.scrollWidth") == 390
    shot(page, "phone-trace")
