"""A trace exported as a JSON file from its page, imported back through the form."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.helpers import bookstore, shot
from tests.testapp.views import BOOKS_SHOWN
from tracer.store import get_store


def test_export_and_import(page: Page, tmp_path: Path):
    bookstore()
    assert page.request.get("/books/n-plus-one/").ok
    (trace,) = get_store().traces()
    page.goto(f"/__tracer__/trace/{trace.id}/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON").click()
    assert download.value.suggested_filename == f"trace-get-books-n-plus-one-{trace.id}.json"
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    data = json.loads(exported.read_text())
    assert data["format"] == "tracer-trace/1"
    assert data["id"] == trace.id
    assert len(data["statements"]) == BOOKS_SHOWN + 1

    page.get_by_role("link", name="Import").click()
    expect(page.locator("h1")).to_have_text("Import a trace")
    page.get_by_label("Trace file").set_input_files(exported)
    page.get_by_role("button", name="Import").click()
    # The imported copy opens: a new id, its own badge, the same findings.
    expect(page).to_have_url(re.compile(r"/__tracer__/trace/\w+/$"))
    assert trace.id not in page.url
    expect(page.locator("h1")).to_have_text("GET /books/n-plus-one/ imported")
    expect(page.locator("#tracer-findings article").first).to_contain_text(
        f"Book.author: {BOOKS_SHOWN} queries for {BOOKS_SHOWN} instances"
    )
    expect(page.locator("#tracer-statement-rows tr")).to_have_count(BOOKS_SHOWN + 1)
    # Its statements open in the drawer; an imported trace is not explained.
    page.locator("#tracer-statement-0 a.tracer-statement-link").click()
    drawer = page.locator("#tracer-drawer")
    expect(drawer.locator("h2")).to_have_text(f"Statement #1 of {BOOKS_SHOWN + 1}")
    expect(drawer.get_by_role("button", name="EXPLAIN")).to_have_count(0)
    shot(page, "imported")

    # Both are listed, the copy badged.
    page.goto("/__tracer__/")
    rows = page.locator("#tracer-trace-rows tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator(".tracer-badge-imported")).to_have_text("imported")
    expect(rows.nth(1).locator(".tracer-badge-imported")).to_have_count(0)
