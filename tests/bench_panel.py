"""The debug-toolbar panel's first view for a 5,000-statement request, next to the
toolbar's own SQL panel on the same requests: `.venv/bin/python tests/bench_panel.py`.

The request is a real N+1 over 5,000 reviews of the demo bookstore (SQLite in memory;
each ``review.book`` a query), served through Django's test client with
DebugToolbarMiddleware and TracerMiddleware after it, and the toolbar's SQLPanel and
tracer's PipelinePanel both enabled. For each panel, as the toolbar does it:

- stats: ``generate_stats()``, run by the toolbar's middleware at the end of the
  request (the pipeline panel exports the trace with its findings there), and the
  size of what it keeps in the toolbar's store (JSON);
- render: the ``djdt:render_panel`` request that opening the panel makes (the
  content is rendered from the stored stats), and the size of the HTML it returns.

Server time in milliseconds, CPU time of this process in brackets; medians of the
requests made.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

import tracer  # noqa: E402

#: The URLconf, a module of its own: its urlpatterns are filled in once Django is set up.
URLS = sys.modules["bench_panel_urls"] = types.ModuleType("bench_panel_urls")

settings.configure(
    DEBUG=True,
    INTERNAL_IPS=["127.0.0.1"],
    ALLOWED_HOSTS=["testserver"],
    DATABASES=tracer.traced(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    ),
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.staticfiles",
        "debug_toolbar",
        "tracer",
        "demo_app",
    ],
    MIDDLEWARE=[
        "debug_toolbar.middleware.DebugToolbarMiddleware",
        "tracer.middleware.TracerMiddleware",
    ],
    DEBUG_TOOLBAR_PANELS=["debug_toolbar.panels.sql.SQLPanel", "tracer.panels.PipelinePanel"],
    DEBUG_TOOLBAR_CONFIG={"IS_RUNNING_TESTS": False, "RESULTS_CACHE_SIZE": 100},
    ROOT_URLCONF="bench_panel_urls",
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [ROOT / "templates"],
            "APP_DIRS": True,
        }
    ],
    STATIC_URL="/static/",
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    USE_TZ=True,
    SECRET_KEY="bench",
)
django.setup()

from debug_toolbar.panels import Panel  # noqa: E402
from debug_toolbar.store import get_store as toolbar_store  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import include, path  # noqa: E402

from demo_app.models import Review  # noqa: E402
from tracer.panels import subtitle  # noqa: E402
from tracer.store import get_store  # noqa: E402

STATEMENTS = 5000
PANELS = ("PipelinePanel", "SQLPanel")


def reviews(request: HttpRequest) -> HttpResponse:
    titles = [review.book.title for review in Review.objects.order_by("id")[: STATEMENTS - 1]]
    return HttpResponse(f"<html><body>{len(titles)} reviews</body></html>")


URLS.urlpatterns = [  # type: ignore[attr-defined]
    path("reviews/", reviews),
    path("__tracer__/", include("tracer.urls")),
    path("__debug__/", include("debug_toolbar.urls")),
]

#: Per panel: the wall-clock and CPU seconds of each generate_stats() call.
STATS_TIMES: dict[str, list[tuple[float, float]]] = defaultdict(list)


def timed_generate_stats() -> None:
    """Time each panel's generate_stats(), as the toolbar's middleware calls it."""
    for panel_class in Panel.__subclasses__():
        own = panel_class.__dict__.get("generate_stats")
        if own is None:
            continue

        def generate_stats(self: Panel, request: Any, response: Any, own: Any = own) -> None:
            start, start_cpu = time.perf_counter(), time.process_time()
            own(self, request, response)
            STATS_TIMES[self.panel_id].append(
                (time.perf_counter() - start, time.process_time() - start_cpu)
            )

        panel_class.generate_stats = generate_stats


def median_ms(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return (
        statistics.median(wall for wall, _ in samples) * 1000,
        statistics.median(cpu for _, cpu in samples) * 1000,
    )


def measure(client: Client, panels: tuple[str, ...], repeat: int) -> dict[str, Any]:
    """Per panel of ``panels``: median times of its stats and of opening it, and the
    sizes of what it stored and of its HTML."""
    renders: dict[str, list[tuple[float, float]]] = defaultdict(list)
    sizes: dict[str, tuple[int, int]] = {}
    STATS_TIMES.clear()
    for round_ in range(repeat + 1):  # the first round warms up (imports, templates)
        if round_ == 1:
            STATS_TIMES.clear()
        response = client.get("/reviews/")
        assert response.status_code == 200, response.status_code
        trace = get_store().traces()[0]
        assert len(trace.statements) == STATEMENTS, len(trace.statements)
        request_id = response.content.decode().split('data-request-id="', 1)[1].split('"', 1)[0]
        for panel_id in panels:
            start, start_cpu = time.perf_counter(), time.process_time()
            rendered = client.get(
                "/__debug__/render_panel/", {"request_id": request_id, "panel_id": panel_id}
            )
            took = (time.perf_counter() - start, time.process_time() - start_cpu)
            assert rendered.status_code == 200, rendered.status_code
            if round_:
                renders[panel_id].append(took)
            stored = toolbar_store()._request_store[request_id][panel_id]
            sizes[panel_id] = (len(stored.encode()), len(rendered.json()["content"].encode()))
    recorded = json.loads(toolbar_store()._request_store[request_id]["PipelinePanel"])
    return {
        "dropped": trace.dropped,
        "subtitle": subtitle(recorded),
        "panels": {
            panel_id: (median_ms(STATS_TIMES[panel_id]), median_ms(renders[panel_id]))
            + sizes[panel_id]
            for panel_id in panels
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="requests measured")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    call_command("seed", stdout=open("/dev/null", "w"))  # noqa: SIM115
    timed_generate_stats()
    alone = Client()
    alone.cookies["djdtSQLPanel"] = "off"  # the toolbar's own switch for a panel
    runs = {
        "alone": measure(alone, ("PipelinePanel",), args.repeat),
        "both on": measure(Client(), PANELS, args.repeat),
    }
    print(f"{STATEMENTS:,} statements, dropped: {runs['alone']['dropped']}")
    print(f"The pipeline panel's subtitle: {runs['alone']['subtitle']}")
    print(
        f"{'':26} {'stats ms (CPU)':>17} {'stored bytes':>13} {'render ms (CPU)':>17}"
        f" {'HTML bytes':>11} {'first view ms (CPU)':>20}"
    )
    for run, measured in runs.items():
        for panel_id, (stats_ms, render_ms, stored, html) in measured["panels"].items():
            print(
                f"{panel_id + ', ' + run:26} {stats_ms[0]:8.1f} ({stats_ms[1]:6.1f})"
                f" {stored:13,} {render_ms[0]:8.1f} ({render_ms[1]:6.1f}) {html:11,}"
                f" {stats_ms[0] + render_ms[0]:11.1f} ({stats_ms[1] + render_ms[1]:6.1f})"
            )


if __name__ == "__main__":
    main()
