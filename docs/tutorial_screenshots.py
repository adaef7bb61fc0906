"""Take the screenshots of docs/tutorial.md: ``make tutorial-screenshots``.

It does what the tutorial tells a reader to do, on the demo as ``make demo`` serves
it: a fresh SQLite database in a temporary directory (migrated and seeded, so the
data is always the same), ``manage.py runserver`` on a free port with
``DEMO_ALSO=postgresql`` (the second engine the backend anatomy page compares with;
no PostgreSQL server is needed, only psycopg), and Debian's Chromium driven by
Playwright (headless). The pages are visited in the tutorial's order and each
screenshot is cropped to what the text talks about.

The PNGs go to docs/screenshots/tutorial/, with figures.json: the figures the
screenshots show (times, counts) that the tutorial quotes. Times differ from run to
run and machine to machine: after taking new screenshots, update the figures the
tutorial quotes (tests/test_tutorial.py checks that it quotes those of figures.json).

    .venv/bin/python docs/tutorial_screenshots.py [--out DIR] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots" / "tutorial"
CHROMIUM = os.environ.get("TRACER_TEST_CHROMIUM", "/usr/bin/chromium")

#: The QuerySet the tutorial follows from the playground to the statement drawer.
EXPRESSION = (
    'Book.objects.filter(price__lt=20).select_related("author").order_by("-published")[:10]'
)

SETTINGS = """\
from demo_app.settings import *  # noqa: F403

DATABASES["default"]["NAME"] = {name!r}  # noqa: F405
"""


# The demo server --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def demo_server() -> Iterator[str]:
    """The demo, on a new seeded SQLite database, served by runserver: its address."""
    with tempfile.TemporaryDirectory(prefix="tracer-tutorial-") as tmp:
        Path(tmp, "tutorial_settings.py").write_text(
            SETTINGS.format(name=str(Path(tmp, "db.sqlite3")))
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([tmp, str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "tutorial_settings",
            "DEMO_ENGINE": "sqlite",
            "DEMO_ALSO": "postgresql",
        }
        manage = [sys.executable, str(ROOT / "manage.py")]
        for command in (["migrate", "--noinput"], ["seed"]):
            subprocess.run([*manage, *command], env=env, cwd=ROOT, check=True, capture_output=True)
        port = _free_port()
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        address = f"http://127.0.0.1:{port}"
        try:
            _wait_for(address, server)
            yield address
        finally:
            server.terminate()
            server.wait(timeout=10)


def _wait_for(address: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(100):  # 20 s at most
        if server.poll() is not None:
            raise SystemExit(f"runserver exited with {server.returncode}")
        try:
            with urllib.request.urlopen(address + "/__tracer__/", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the demo server did not answer at {address}")


# Screenshots ------------------------------------------------------------------------------


class Shooter:
    def __init__(self, page: Any, out: Path) -> None:
        self.page = page
        self.out = out
        self.figures: dict[str, Any] = {}

    def box(self, selector: str, fixed: bool = False) -> dict[str, float]:
        found = self.page.locator(selector).first.bounding_box()
        if found is None:
            raise SystemExit(f"nothing visible matches {selector!r} on {self.page.url}")
        scroll = [0, 0] if fixed else self.page.evaluate("[window.scrollX, window.scrollY]")
        return {**found, "x": found["x"] + scroll[0], "y": found["y"] + scroll[1]}

    def shot(
        self, name: str, first: str, last: str | None = None, pad: int = 12, fixed: bool = False
    ) -> None:
        """The part of the page from the top of ``first`` to the bottom of ``last``
        (or of ``first``), as wide as the wider of the two. ``fixed``: they are in a
        fixed element (the drawer), shot as the viewport shows it."""
        top = self.box(first, fixed)
        bottom = self.box(last, fixed) if last else top
        left = min(top["x"], bottom["x"]) - pad
        right = max(top["x"] + top["width"], bottom["x"] + bottom["width"]) + pad
        clip = {
            "x": max(left, 0),
            "y": max(top["y"] - pad, 0),
            "width": right - max(left, 0),
            "height": bottom["y"] + bottom["height"] + pad - max(top["y"] - pad, 0),
        }
        path = self.out / f"{name}.png"
        self.page.screenshot(path=path, clip=clip, full_page=not fixed, animations="disabled")
        _said(path)

    def element(self, name: str, selector: str) -> None:
        """Exactly one element (a drawer, a panel), as it is on screen."""
        path = self.out / f"{name}.png"
        self.page.locator(selector).first.screenshot(path=path, animations="disabled")
        _said(path)

    def text(self, selector: str) -> str:
        return " ".join(self.page.locator(selector).first.inner_text().split())

    def viewport(self, name: str) -> None:
        """What the window shows."""
        path = self.out / f"{name}.png"
        self.page.screenshot(path=path, animations="disabled")
        _said(path)

    def go(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_load_state("networkidle")


def _said(path: Path) -> None:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"{shown}: {path.stat().st_size // 1024} KB")


def trace_link(shooter: Shooter) -> str:
    """The tracer app's page of the request a demo page just showed."""
    link = shooter.page.locator("a", has_text="This request in the tracer app").first
    return str(link.get_attribute("href"))


#: Runs of the playground and visits of each page whose figures are quoted.
RUNS = 3

#: Runs of the playground and visits of each page whose figures are quoted.
RUNS = 3

#: The demo's pages the tour visits. Each is requested once first: the first request
#: of a new process pays for one-off work (imports, compiling templates, opening the
#: connection) that the tutorial's figures should not show.
PAGES = (
    "/",
    "/books/n-plus-one/",
    "/books/select-related/",
    "/patterns/loop-n-plus-one/bad/",
    "/patterns/loop-n-plus-one/fixed/",
    "/patterns/hydration/bad/",
    "/patterns/hydration/fixed/",
    "/patterns/duplicates/bad/",
)


def warm_up(base: str) -> None:
    for path in PAGES:
        with urllib.request.urlopen(base + path, timeout=60) as response:
            response.read()


def take(base: str, out: Path, chromium: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    warm_up(base)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, color_scheme="light", base_url=base
        )
        # debug-toolbar starts collapsed, as the tutorial's pages show it (its handle
        # stays on the page's edge); the panel's own screenshot opens it.
        context.add_init_script("localStorage.setItem('djdt.show', 'false')")
        page = context.new_page()
        shooter = Shooter(page, out)
        try:
            _tour(shooter)
        finally:
            browser.close()
    return shooter.figures


def _tour(s: Shooter) -> None:
    page = s.page
    figures = s.figures

    # 1. The demo's index.
    s.go("/")
    s.shot("index", "header.tracer-header", "#pattern-template-n-plus-one")

    # 2. One QuerySet in the playground: the chained calls, then the SQL.
    s.go("/__tracer__/playground/?q=" + quote(EXPRESSION))
    page.locator("summary", has_text="The Query's state: what changed").nth(1).click()
    s.shot("playground", "main h1", "#tracer-playground-path")
    s.shot("playground-calls", "#tracer-playground-queryset")
    s.shot("playground-sql", "#tracer-playground-statements")

    # 3. Run it, then open its statement. Three times, the last one shown: the first
    # run in a new process pays for one-off work (opening the connection...).
    for _ in range(RUNS):
        with page.expect_response(lambda response: response.request.method == "POST"):
            page.get_by_role("button", name="Run").click()
        page.wait_for_load_state("networkidle")
    cells = page.locator("#tracer-playground-ran table.tracer-timings tbody tr").first
    names = ("build", "compile", "execute", "fetch", "convert", "hydrate")
    values = cells.locator("td.num").all_inner_texts()[1:]
    figures["run"] = dict(zip(names, values, strict=True))
    s.shot("playground-run", "#tracer-playground-ran h2", "#tracer-playground-ran .tracer-legend")
    run_trace = str(
        page.locator("#tracer-playground-ran a", has_text="open it").get_attribute("href")
    )
    s.go(run_trace)
    page.set_viewport_size({"width": 1280, "height": 1200})
    page.locator("#tracer-statements a.tracer-statement-link").first.click()
    page.wait_for_selector("#tracer-drawer:not([hidden]) .tracer-pipeline")
    figures["drawer"] = _time_parts(s, "#tracer-drawer")
    s.shot(
        "statement-drawer",
        "#tracer-drawer",
        "#tracer-drawer .tracer-pipeline-section",
        pad=0,
        fixed=True,
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    statement_page = str(
        page.locator("#tracer-drawer a", has_text="Open as a page").get_attribute("href")
    )

    # The stages, opened one by one on the statement's own page.
    s.go(statement_page)
    for stage in ("queryset", "query", "compiler", "backend"):
        page.locator(f".tracer-stage-{stage} > details > summary").click()
        s.shot(f"stage-{stage}", f".tracer-stage-{stage}")
        page.locator(f".tracer-stage-{stage} > details > summary").click()

    # 4. The template N+1, its trace, one of its loads; the fix; the two compared.
    bad = typical(s, "/books/n-plus-one/")
    s.shot("n-plus-one-page", "main .demo-crumbs", "main .demo-expect")
    s.go(bad)
    s.shot("n-plus-one-trace", "#tracer-summary", "#tracer-findings")
    s.shot("n-plus-one-waterfall", "#tracer-waterfall")
    figures["n_plus_one"] = _summary(s)
    page.locator("#tracer-statements a.tracer-statement-link", has_text="#2").first.click()
    page.wait_for_selector("#tracer-drawer:not([hidden]) .tracer-pipeline")
    s.shot(
        "n-plus-one-load",
        "#tracer-drawer",
        "#tracer-drawer .tracer-statement-operation",
        pad=0,
        fixed=True,
    )
    fixed = typical(s, "/books/select-related/")
    s.go(f"/__tracer__/compare/?a={_id(bad)}&b={_id(fixed)}")
    s.shot("compare", "main h1", "#tracer-compare-shapes")
    figures["compare"] = {
        label: s.page.locator(
            f"#tracer-compare-figures tr:has(th:text-is('{label}')) td"
        ).all_inner_texts()
        for label in ("Statements", "Total ms", "DB ms", "ORM ms")
    }

    # The view-loop N+1, and its fix.
    s.go("/patterns/loop-n-plus-one/bad/")
    s.go(trace_link(s))
    s.shot("loop-n-plus-one", "#tracer-findings")
    s.go("/patterns/loop-n-plus-one/fixed/")

    # 5. Hydration: the same query as instances and as tuples.
    for kind in ("bad", "fixed"):
        s.go(typical(s, f"/patterns/hydration/{kind}/"))
        page.locator("#tracer-statements a.tracer-statement-link").first.click()
        page.wait_for_selector("#tracer-drawer:not([hidden]) .tracer-pipeline")
        figures[f"hydration_{kind}"] = _time_parts(s, "#tracer-drawer")
        s.shot(f"hydration-{kind}", "#tracer-drawer .tracer-time", fixed=True)

    # Duplicates.
    s.go("/patterns/duplicates/bad/")
    s.go(trace_link(s))
    s.shot("duplicates", "#tracer-findings")

    # The toolbar's panel, on the N+1 page.
    s.go("/books/n-plus-one/")
    page.locator("#djShowToolBarButton").click()
    page.locator("#djDebug a", has_text="Query pipeline").first.click()
    page.wait_for_selector("#PipelinePanel .djdt-scroll tracer-panel, #PipelinePanel tracer-panel")
    page.wait_for_load_state("networkidle")
    s.viewport("panel")

    # The backend anatomy page: SQLite next to PostgreSQL.
    s.go("/__tracer__/backends/?a=default&b=postgresql")
    s.shot("backends", "main h1", ".tracer-backends-heads")
    lookups = "section:has(> #tracer-backend-lookups)"
    s.shot("backends-lookups", "#tracer-backend-lookups", f"{lookups} table tbody tr:nth-child(4)")


def _time_parts(s: Shooter, scope: str) -> dict[str, str]:
    """Each part of 'Where the time went' as shown: {label: ms}."""
    parts = {}
    for item in s.page.locator(f"{scope} .tracer-time .tracer-legend li").all():
        label, ms = re.match(r"(.+?) ([\d,.]+) ms", " ".join(item.inner_text().split())).groups()
        parts[label] = ms
    split = s.text(f"{scope} .tracer-time-split")
    database, python = re.findall(r"([\d,.]+) ms", split)[:2]
    return {**parts, "database": database, "python": python}


def typical(s: Shooter, path: str) -> str:
    """Visit a demo page RUNS times: the link to the trace of the median request (by
    its duration), so that one slow or fast moment of the machine is not the one
    quoted. The last visit stays on screen."""
    found = []
    for _ in range(RUNS):
        s.go(path)
        link = trace_link(s)
        exported = s.page.request.get(link + "export/").json()
        found.append((exported["duration_ms"], link))
    return sorted(found)[len(found) // 2][1]


def _summary(s: Shooter) -> dict[str, str]:
    """A trace page's figures, as shown: {label: text}."""
    figures = s.page.locator("#tracer-summary dl.tracer-figures > div")
    return {
        " ".join(item.locator("dt").inner_text().split()): item.locator("dd").inner_text()
        for item in figures.all()
    }


def _id(trace_url: str) -> str:
    return trace_url.rstrip("/").rsplit("/", 1)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with demo_server() as base:
        figures = take(base, args.out, args.chromium)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
