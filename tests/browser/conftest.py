"""Browser tests: Debian's Chromium, driven by Playwright, against a live server.

The browser is the system's Chromium (``/usr/bin/chromium``, or the path in
``TRACER_TEST_CHROMIUM``), never one Playwright downloads. Without it, or without the
``playwright`` package, these tests skip and say why; with ``CI=true`` they fail.

Every test saves screenshots of what it saw under ``tests/browser/screenshots/``
(ignored by git). With ``TRACER_README_SCREENSHOTS=1`` the ones the README shows are
written to ``docs/screenshots/`` as well.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.test import override_settings
from pytest_django.live_server_helper import LiveServer

from tests.browser.helpers import shot
from tests.databases import CI
from tracer.store import get_store

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("TRACER_TEST_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 900}


def _missing() -> str | None:
    """Why the browser cannot run, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="package")
def browser(django_db_setup: None) -> Iterator[Browser]:
    """Headless Chromium, one for all the browser tests.

    Playwright's sync API keeps an asyncio loop running in this thread, and Django
    refuses ORM calls where a loop runs: the tests' own ORM calls (setting data up,
    flushing it) never overlap a browser call, so the check is lifted while the
    browser is open, and restored after. The test databases are made before."""
    reason = _missing()
    if reason:
        if CI:
            pytest.fail(f"CI=true and the browser tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-dev-shm-usage"],
                headless=True,
            )
            yield chromium
            chromium.close()
    finally:
        if before is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="package")
def live_server(browser: Browser) -> Iterator[LiveServer]:
    """pytest-django's live server, on 127.0.0.1 rather than ``localhost``. It serves
    the static files (htmx, the CSS) and shares the in-memory SQLite database with the
    tests. The tracer's pages are shown to it (DEBUG on, 127.0.0.1 internal), each
    request is recorded (TracerMiddleware) and POSTs need their CSRF token: set before
    it starts, since its handler loads the middleware once."""
    middleware = [
        "tracer.middleware.TracerMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ]
    with override_settings(DEBUG=True, INTERNAL_IPS=["127.0.0.1"], MIDDLEWARE=middleware):
        server = LiveServer("127.0.0.1:0")
        yield server
        server.stop()


@pytest.fixture
def site(live_server: LiveServer) -> Iterator[str]:
    """The live server's address, with an empty store."""
    get_store().clear()
    yield live_server.url
    get_store().clear()


@dataclass
class Watch:
    """What a page did that it should not have: script errors, dialogs, failed
    responses (a missing htmx, a server error behind an htmx request)."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [
            *(f"script error: {error}" for error in self.errors),
            *(f"dialog: {message}" for message in self.dialogs),
            *(f"response: {failure}" for failure in self.failures),
        ]


def _page(browser: Browser, request: pytest.FixtureRequest, **options: Any) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, **options)
    page = context.new_page()
    watch = Watch()
    page.on("pageerror", lambda error: watch.errors.append(str(error)))
    page.on("console", lambda message: _console(watch, message))

    def dialog(opened: Any) -> None:
        watch.dialogs.append(f"{opened.type}: {opened.message}")
        opened.dismiss()

    page.on("dialog", dialog)
    page.on("response", lambda response: _response(watch, response))
    page.on("requestfailed", lambda failed: _failed(watch, failed))
    yield page
    if not page.is_closed():
        shot(page, re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-"))
    context.close()
    problems = watch.problems()
    assert not problems, "the page misbehaved:\n" + "\n".join(problems)


#: Console errors that are not: a failed response is reported below, once; htmx logs
#: a request that a newer one replaced (hx-sync) as an error.
NOT_ERRORS = ("Failed to load resource", "htmx:sendAbort", "htmx:afterRequest")


def _console(watch: Watch, message: Any) -> None:
    if message.type == "error" and not message.text.startswith(NOT_ERRORS):
        watch.errors.append(message.text)


def _failed(watch: Watch, request: Any) -> None:
    # htmx aborts a request that a newer one replaces (hx-sync): not a failure.
    if request.failure != "net::ERR_ABORTED":
        watch.failures.append(f"{request.method} {request.url}: {request.failure}")


def _response(watch: Watch, response: Any) -> None:
    if response.status >= 400:
        watch.failures.append(f"{response.status} {response.request.method} {response.url}")


@pytest.fixture
def page(browser: Browser, site: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page (1280×900, light) on the live server: any script error, dialog or
    failed response during the test fails it."""
    yield from _page(browser, request, color_scheme="light", base_url=site)


@pytest.fixture
def dark_page(browser: Browser, site: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """The same in the dark color scheme."""
    yield from _page(browser, request, color_scheme="dark", base_url=site)
