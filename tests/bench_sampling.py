"""What each TracerMiddleware mode costs a request: `python tests/bench_sampling.py`.

A request (RequestFactory, one process, SQLite file) goes through TracerMiddleware to
a view, from a call stack about 35 frames deep, in each mode:

  plain         the plain engine, no middleware, Django's ORM unpatched
  idle          tracer.backend and TracerMiddleware with SAMPLE 0: nothing recorded
  sample 0.1    one request in ten recorded (random draws)
  sample 1      every request recorded (the default)
  on demand     SAMPLE 0, every request asking with "X-Tracer: 1" and allowed
  comments      sample 1 with SQL_COMMENTS
  otel          sample 1 with OTEL, spans to an SDK provider whose exporter drops them
                (BatchSpanProcessor): the spans are made by tracer's export thread

Times are CPU time, which other processes on a shared machine disturb less than wall
time: of the whole process (the export thread included, waited for at the end of each
round), and of the request's thread alone (what a request's latency pays). Rounds are
interleaved (every mode once per round, shuffled); medians per request are reported
with their ratio to plain.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

DB = Path(tempfile.mkdtemp(prefix="tracer-bench-sampling-")) / "bench.sqlite3"
SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DB)}
settings.configure(
    DEBUG=False,
    DATABASES={
        "default": SQLITE,
        "traced": {**SQLITE, "ENGINE": "tracer.backend", "WRAPPED_ENGINE": SQLITE["ENGINE"]},
    },
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "demo_app"],
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    ROOT_URLCONF="__main__",  # urlpatterns below: TracerMiddleware resolves each request
    USE_TZ=True,
    SECRET_KEY="bench",
    ALLOWED_HOSTS=["testserver"],
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from demo_app.models import Book  # noqa: E402
from tracer import otel, pipeline  # noqa: E402
from tracer.middleware import TracerMiddleware  # noqa: E402
from tracer.store import get_store  # noqa: E402


def grant(request: HttpRequest) -> bool:
    return True


urlpatterns = [path("books/", lambda request: HttpResponse())]


MODES: dict[str, dict[str, Any] | None] = {
    "plain": None,
    "idle": {"SAMPLE": 0},
    "sample 0.1": {"SAMPLE": 0.1},
    "sample 1": {},
    "on demand": {"SAMPLE": 0, "ON_DEMAND": grant},
    "comments": {"SQL_COMMENTS": True},
    "otel": {"OTEL": True},
}


def page(alias: str) -> Callable[[HttpRequest], HttpResponse]:
    """A page of 11 statements: a select_related list and ten point lookups."""

    def view(request: HttpRequest) -> HttpResponse:
        books = list(Book.objects.using(alias).select_related("author").order_by("id")[:20])
        for book in books[:10]:
            Book.objects.using(alias).get(pk=book.pk)
        return HttpResponse(str(len(books)))

    return view


def n_plus_one(alias: str) -> Callable[[HttpRequest], HttpResponse]:
    """An N+1 page of 31 statements."""

    def view(request: HttpRequest) -> HttpResponse:
        names = [book.author.name for book in Book.objects.using(alias).order_by("id")[:30]]
        return HttpResponse(str(len(names)))

    return view


VIEWS = {"11-statement page": page, "N+1 page (31 statements)": n_plus_one}
REQUESTS = 20  # per round and mode


def deep(depth: int, call: Callable[[], Any]) -> Any:
    return call() if depth == 0 else deep(depth - 1, call)


def run_once(
    mode: str, make_view: Callable[[str], Callable[..., HttpResponse]]
) -> tuple[float, float]:
    """CPU microseconds per request: of the process, and of the request's thread."""
    tracer_settings = MODES[mode]
    if tracer_settings is None:
        pipeline.uninstall()
        handler: Callable[[HttpRequest], HttpResponse] = make_view("default")
        context: Any = nullcontext()
    else:
        pipeline.install()
        handler = TracerMiddleware(make_view("traced"))  # type: ignore[assignment]
        context = override_settings(TRACER=tracer_settings)
    factory = RequestFactory()
    headers = {"HTTP_X_TRACER": "1"} if mode == "on demand" else {}
    requests = [factory.get("/books/", **headers) for _ in range(REQUESTS)]
    gc.collect()
    with context:
        process = time.process_time_ns()
        thread = time.thread_time_ns()
        for request in requests:
            deep(35, lambda request=request: handler(request))
        thread = time.thread_time_ns() - thread
        otel.flush()
        process = time.process_time_ns() - process
    get_store().clear()
    return process / 1e3 / REQUESTS, thread / 1e3 / REQUESTS


def otel_provider() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(provider)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = args.modes.split(",")

    call_command("migrate", verbosity=0)
    call_command("seed", stdout=open("/dev/null", "w"))
    connections["traced"].ensure_connection()
    otel_provider()

    rng = random.Random(0)
    print(
        f"tracer sampling bench: Django {django.__version__}, "
        f"Python {sys.version.split()[0]}, {args.rounds} interleaved rounds of "
        f"{REQUESTS} requests, medians of CPU time per request"
    )
    results: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for name, make_view in VIEWS.items():
        for mode in modes:  # warm-up round
            run_once(mode, make_view)
        times: dict[str, tuple[list[float], list[float]]] = {mode: ([], []) for mode in modes}
        for _ in range(args.rounds):
            order = modes[:]
            rng.shuffle(order)
            for mode in order:
                process, thread = run_once(mode, make_view)
                times[mode][0].append(process)
                times[mode][1].append(thread)
        results[name] = times
    for which, title in ((0, "process"), (1, "request thread")):
        header = f"{'us per request, ' + title:34} " + " ".join(f"{m:>15}" for m in modes)
        print()
        print(header)
        print("-" * len(header))
        for name, times in results.items():
            plain = statistics.median(times["plain"][which]) if "plain" in times else None
            cells = []
            for mode in modes:
                median = statistics.median(times[mode][which])
                ratio = f" {median / plain:5.2f}x" if plain else ""
                cells.append(f"{median:7.0f}{ratio}")
            print(f"{name:34} " + " ".join(f"{c:>15}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
