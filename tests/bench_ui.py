"""Server time and size of the trace page for a 5,000-statement request:
`.venv/bin/python tests/bench_ui.py`.

The trace is real: an N+1 loop over 5,000 reviews of the demo bookstore (SQLite in
memory), each ``review.book`` a query, recorded with the default caps (past SOFT_CAP,
statements keep their SQL and timings but not their params and stacks). The pages are
requested through Django's test client, in process, so the times are the server's:
URL resolving, the view, the templates.

- cold: the trace's export (``to_dict()`` with its findings) and every display cache
  (fingerprints, collapsed SQL, resolved stack frames) cleared before each request, as
  for the first view of a new trace;
- warm: the export cached, as for every later view.

Medians in milliseconds; sizes in bytes.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

import tracer  # noqa: E402

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
        "tracer",
        "demo_app",
    ],
    ROOT_URLCONF="demo_app.urls",
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
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from demo_app.models import Review  # noqa: E402
from tracer import sqldisplay, sqlscan, stacks  # noqa: E402
from tracer.analysis import fingerprint  # noqa: E402
from tracer.trace import Trace  # noqa: E402

STATEMENTS = 5000


def record() -> Trace:
    titles = []
    with tracer.capture("GET /reviews/") as trace:
        for review in Review.objects.order_by("id")[: STATEMENTS - 1]:
            titles.append(review.book.title)
    trace.request = {"method": "GET", "path": "/reviews/", "status": 200, "view": None}
    return trace


def forget(trace: Trace) -> None:
    """Make the next view of ``trace`` its first one."""
    trace._exported = None
    trace._summary = None
    for cache in (
        sqldisplay._formatted,
        sqldisplay._highlighted,
        sqlscan._cached_values,
        fingerprint._cached_normalize,
        fingerprint._digest,
        stacks._resolved,
    ):
        cache.cache_clear()


def median_ms(
    step: Callable[[], object], repeat: int, before: Callable[[], None]
) -> tuple[float, float]:
    """Medians of the wall-clock and the CPU time of ``step``, in ms. On a shared
    machine the CPU time (this process's) moves less."""
    wall, cpu = [], []
    for _ in range(repeat):
        before()
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="cold repetitions (warm: 3x)")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    call_command("seed", stdout=open("/dev/null", "w"))  # noqa: SIM115
    trace = record()
    assert len(trace.statements) == STATEMENTS, len(trace.statements)
    client = Client()
    pages = {
        "trace page": f"/__tracer__/trace/{trace.id}/",
        "next 100 statements (htmx)": f"/__tracer__/trace/{trace.id}/statements/?offset=100",
        "trace list": "/__tracer__/",
    }

    def get(path: str, **headers: str) -> bytes:
        response = client.get(path, **headers)
        assert response.status_code == 200, response.status_code
        return response.content

    get(pages["trace page"])  # warm-up: imports, template compilation

    def nothing() -> None:
        pass

    print(f"{len(trace.statements):,} statements, dropped: {trace.dropped}")
    print(f"{'':28} {'cold ms (CPU)':>15} {'warm ms (CPU)':>15} {'bytes':>11}")
    for name, path in pages.items():
        headers = {"HTTP_HX_REQUEST": "true"} if "htmx" in name else {}
        page = functools.partial(get, path, **headers)
        cold = median_ms(page, args.repeat, lambda: forget(trace))
        warm = median_ms(page, args.repeat * 3, nothing)
        size = len(page())
        print(
            f"{name:28} {cold[0]:7.1f} ({cold[1]:5.1f}) {warm[0]:7.1f} ({warm[1]:5.1f}) {size:11,}"
        )
    export = median_ms(trace.to_dict, args.repeat, lambda: forget(trace))
    size = len(json.dumps(trace.to_dict()).encode())
    print(f"{'to_dict() alone':28} {export[0]:7.1f} ({export[1]:5.1f}) {'':>15} {size:11,} (JSON)")


if __name__ == "__main__":
    main()
