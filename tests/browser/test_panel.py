"""The debug-toolbar panel (tracer/panels.py) in a browser: a page with the toolbar,
the Query pipeline panel opened, a statement expanded in its drawer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import override_settings
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.browser.helpers import bookstore, shot
from tests.testapp.views import BOOKS_SHOWN


@pytest.fixture(scope="module")
def live_server(browser: Browser) -> Iterator[LiveServer]:
    """A live server of its own, with the toolbar: its middleware first and
    TracerMiddleware after it, as the README says; not on the tracer's pages."""
    middleware = [
        "debug_toolbar.middleware.DebugToolbarMiddleware",
        "tracer.middleware.TracerMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ]
    config = {"IS_RUNNING_TESTS": False, "SHOW_TOOLBAR_CALLBACK": "tracer.panels.show_toolbar"}
    with override_settings(
        DEBUG=True,
        INTERNAL_IPS=["127.0.0.1"],
        MIDDLEWARE=middleware,
        DEBUG_TOOLBAR_CONFIG=config,
    ):
        server = LiveServer("127.0.0.1:0")
        yield server
        server.stop()


def test_panel_on_a_page(page: Page):
    bookstore()
    page.goto("/books/n-plus-one/")
    toolbar = page.locator("#djDebugToolbar")
    expect(toolbar).to_be_visible()
    entry = toolbar.locator("#djdt-PipelinePanel")
    expect(entry).to_contain_text("Query pipeline")
    expect(entry).to_contain_text(f"{BOOKS_SHOWN + 1} statements")
    expect(entry).to_contain_text("1 N+1")
    entry.get_by_role("link").click()

    # The panel's content, in its own shadow root (Playwright's locators pierce it).
    panel = page.locator("tracer-panel .tracer-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("#tracer-findings article").first).to_contain_text(
        f"Book.author: {BOOKS_SHOWN} queries for {BOOKS_SHOWN} instances"
    )
    rows = panel.locator("#tracer-statement-rows tr")
    expect(rows).to_have_count(BOOKS_SHOWN + 1)
    expect(panel.get_by_role("link", name="Open this trace in the tracer app")).to_have_attribute(
        "href", re.compile(r"^/__tracer__/trace/\w+/$")
    )
    # htmx loaded into the panel: a statement opens in the drawer over it.
    rows.first.locator("a.tracer-statement-link").click()
    drawer = panel.locator("#tracer-drawer")
    expect(drawer).to_be_visible()
    expect(drawer.locator("h2")).to_have_text(f"Statement #1 of {BOOKS_SHOWN + 1}")
    stage = drawer.locator(".tracer-stage-queryset")
    stage.locator("summary").click()
    expect(stage.locator(".tracer-stage-detail")).to_contain_text(
        f"Book.objects.order_by('title')[:{BOOKS_SHOWN}]"
    )
    shot(page, "panel")
    # Escape closes the drawer, and leaves the toolbar's panel open.
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(panel).to_be_visible()
