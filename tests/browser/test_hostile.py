"""Recorded text that looks like markup is shown as text: in the list, a trace's page
and the statement drawer, where htmx swaps fragments in (and would run a script
element it found in one)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.helpers import shot
from tests.testapp.views import HOSTILE_PARAM

PATH = "/hostile/<img src=x onerror=alert(1)>/"
LITERAL = "'<script>window.__pwned = 1</script>'"
MARKUP = "'<img src=x onerror=alert(2)>'"


def assert_inert(page: Page) -> None:
    """No recorded markup became an element, and nothing ran."""
    assert page.evaluate("typeof window.__pwned") == "undefined"
    # The one script is htmx's; there is no image at all.
    assert page.locator("script").count() == 1
    assert page.locator("img").count() == 0


def test_hostile_text_stays_text(page: Page):
    assert page.request.get(PATH).ok
    page.goto("/__tracer__/")
    link = page.locator("#tracer-trace-rows .tracer-path a")
    expect(link).to_have_text(PATH)
    assert_inert(page)

    link.click()
    expect(page.locator("h1")).to_have_text(f"GET {PATH}")
    # The raw SQL with its literals is an injection risk, quoted as text.
    risk = page.locator(".tracer-finding-injection")
    expect(risk).to_contain_text(LITERAL)
    expect(risk).to_contain_text(MARKUP)
    row = page.locator("#tracer-statement-0")
    expect(row.locator(".tracer-sql")).to_contain_text(LITERAL)
    expect(row.locator(".tracer-params")).to_contain_text(HOSTILE_PARAM)
    assert_inert(page)

    row.locator("a.tracer-statement-link").click()
    drawer = page.locator("#tracer-drawer")
    expect(drawer).to_be_visible()
    expect(drawer.locator(".tracer-sql-block").first).to_contain_text(LITERAL)
    expect(drawer.locator(".tracer-sql-block").first).to_contain_text(MARKUP)
    expect(drawer.locator("table.tracer-params tbody td").nth(2)).to_have_text(repr(HOSTILE_PARAM))
    drawer.get_by_text("With the params written in").click()
    interpolated = drawer.locator(".tracer-interpolated pre")
    expect(interpolated).to_be_visible()
    expect(interpolated).to_contain_text(f"SELECT '{HOSTILE_PARAM}' AS param")
    expect(interpolated).to_contain_text(LITERAL)
    assert_inert(page)
    shot(page, "hostile")
    # No dialog opened: the page fixture fails the test on any.
