"""Cost of the tracer, measured side by side in one process: `make bench`.

Modes, on one SQLite database file through separate aliases:
  plain      the wrapped engine alone (Django's ORM classes unpatched)
  idle       tracer.backend installed, nothing recording
  recording  tracer.backend inside tracer.capture()
  toolbar    django-debug-toolbar's SQL panel recording (plain engine, ORM unpatched)

Each workload runs from a call stack about 35 frames deep, as in a real view.
Repetitions are interleaved (every mode once per round, in a shuffled order) and the
median is reported, with its ratio to plain. Also: memory retained per recorded
statement, without SQL text and params.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from benchargs import names

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

# TRACER_BENCH_DB: an already migrated and seeded database (tests/bench_instructions.py).
DB = Path(
    os.environ.get("TRACER_BENCH_DB")
    or Path(tempfile.mkdtemp(prefix="tracer-bench-")) / "bench.sqlite3"
)
SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DB)}
settings.configure(
    DEBUG=False,
    DATABASES={
        "default": SQLITE,
        "traced": {**SQLITE, "ENGINE": "tracer.backend", "WRAPPED_ENGINE": SQLITE["ENGINE"]},
        "toolbar": SQLITE,
    },
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.staticfiles",
        "debug_toolbar",
        "demo_app",
    ],
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    STATIC_URL="/static/",
    ROOT_URLCONF=[],
    USE_TZ=True,
    SECRET_KEY="bench",
    DEBUG_TOOLBAR_CONFIG={"IS_RUNNING_TESTS": False},
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402

import tracer  # noqa: E402
from demo_app.models import Book, Review  # noqa: E402
from tracer import pipeline  # noqa: E402
from tracer.store import get_store  # noqa: E402

ALIAS = {"plain": "default", "idle": "traced", "recording": "traced", "toolbar": "toolbar"}


def raw_selects(alias: str) -> int:
    with connections[alias].cursor() as cursor:
        for _ in range(3000):
            cursor.execute("SELECT 1")
            cursor.fetchone()
    return 3000


def point_lookups(alias: str) -> int:
    for pk in range(1, 3001):
        Book.objects.using(alias).get(pk=(pk % 1000) + 1)
    return 3000


def select_related_pages(alias: str) -> int:
    for page in range(300):
        offset = (page * 50) % 950
        list(
            Book.objects.using(alias).select_related("author").order_by("id")[offset : offset + 50]
        )
    return 300


def big_fetch(alias: str) -> int:
    assert len(list(Review.objects.using(alias).all()[:5000])) == 5000
    return 1


def updates_in_transaction(alias: str) -> int:
    with transaction.atomic(using=alias):
        for pk in range(1, 501):
            Book.objects.using(alias).filter(pk=pk).update(price=pk % 40 + 5)
    return 500


def n_plus_one_page(alias: str) -> int:
    for book in Book.objects.using(alias).order_by("id")[:30]:
        book.author.name  # noqa: B018
    return 1


WORKLOADS: dict[str, tuple[Callable[[str], int], str]] = {
    "3,000 raw cursor SELECT 1": (raw_selects, "statement"),
    "3,000 point lookups": (point_lookups, "lookup"),
    "300 select_related pages of 50": (select_related_pages, "page"),
    "5,000-row fetch": (big_fetch, "fetch"),
    "500 updates in a transaction": (updates_in_transaction, "update"),
    "N+1 page (31 queries)": (n_plus_one_page, "page"),
}


def deep(depth: int, call: Callable[[], int]) -> int:
    return call() if depth == 0 else deep(depth - 1, call)


def toolbar_panel():  # type: ignore[no-untyped-def]
    from debug_toolbar.toolbar import DebugToolbar
    from django.http import HttpResponse
    from django.test import RequestFactory

    toolbar = DebugToolbar(RequestFactory().get("/"), lambda request: HttpResponse())
    return toolbar.get_panel_by_id("SQLPanel")


def run_once(mode: str, workload: Callable[[str], int]) -> tuple[float, int]:
    alias = ALIAS[mode]
    # The ORM's methods are patched process-wide once a traced connection exists:
    # plain and toolbar run with Django's own, unpatched.
    if mode in ("plain", "toolbar"):
        pipeline.uninstall()
    else:
        pipeline.install()
    panel = toolbar_panel() if mode == "toolbar" else None
    if panel is not None:
        panel.enable_instrumentation()
    context = tracer.capture() if mode == "recording" else nullcontext()
    # Collect now, so that no mode pays for garbage another one left.
    gc.collect()
    try:
        with context:
            start = time.perf_counter_ns()
            operations = deep(35, lambda: workload(alias))
            elapsed = time.perf_counter_ns() - start
    finally:
        if panel is not None:
            panel.disable_instrumentation()
    return elapsed / 1e3, operations


def retained_per_statement() -> tuple[float, float]:
    """Bytes retained per recorded statement: all, and without SQL text and params."""

    def sizes(trace: tracer.Trace) -> int:
        total = 0
        for statement in trace.statements:
            total += sys.getsizeof(statement.sql)
            if isinstance(statement.params, (list, tuple)):
                total += sys.getsizeof(statement.params)
                total += sum(sys.getsizeof(p) for p in statement.params)
        return total

    # Warm caches outside the measurement, in a capture: what the first capture
    # imports and builds when it ends is not per statement.
    with tracer.capture():
        point_lookups("traced")
    # An empty store: the measured trace must not evict earlier ones (the bench's own
    # rounds), which would free memory and count against the statement.
    get_store().clear()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    with tracer.capture() as trace:
        point_lookups("traced")
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    count = len(trace.statements)
    retained = after - before
    return retained / count, (retained - sizes(trace)) / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--modes", type=names(ALIAS), default=list(ALIAS))
    args = parser.parse_args()
    modes = args.modes

    call_command("migrate", verbosity=0)
    call_command("seed", stdout=open("/dev/null", "w"))
    for alias in ("traced", "toolbar"):
        connections[alias].ensure_connection()

    rng = random.Random(0)
    print(
        f"tracer bench: Django {django.__version__}, "
        f"SQLite {connections['default'].Database.sqlite_version}, "
        f"Python {sys.version.split()[0]}, {args.rounds} interleaved rounds, medians"
    )
    header = f"{'workload (time per operation)':44} " + " ".join(
        f"{m + ' us/op':>18}" for m in modes
    )
    print(header)
    print("-" * len(header))
    for name, (workload, unit) in WORKLOADS.items():
        for mode in modes:  # warm-up round
            run_once(mode, workload)
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            order = modes[:]
            rng.shuffle(order)
            for mode in order:
                micros, operations = run_once(mode, workload)
                times[mode].append(micros / operations)
        plain = statistics.median(times["plain"]) if "plain" in times else None
        cells = []
        for mode in modes:
            median = statistics.median(times[mode])
            ratio = f" {median / plain:5.2f}x" if plain else ""
            cells.append(f"{median:11.1f}{ratio}")
        print(
            f"{name + ' (per ' + unit + ')':44} " + " ".join(f"{c:>18}" for c in cells), flush=True
        )
    total, without = retained_per_statement()
    print(
        f"\nretained per recorded statement: {total:.0f} B in all, "
        f"{without:.0f} B without SQL text and params"
    )


if __name__ == "__main__":
    main()
