"""Cost of the stores: `.venv/bin/python tests/bench_store.py [--traces 1000]`.

Records realistic request traces from the demo bookstore (SQLite), about 20 statements
each, in turn: a list page with an N+1, its select_related fix, a detail page (an N+1
on tags too), a search. A SQLiteStore (a temporary file) and a MemoryStore are each
filled with TRACES (1,000) of them, as a server fills them: recorded, added, and (for
the file store) dropped, while its writer thread works. Then, in milliseconds:

- add() on the request thread: the memory store estimates the trace's size, the file
  store only queues it. Beside it, the file store writer's work for one new trace
  (export with findings; JSON, summary, params, INSERT), which a synchronous add()
  would make the request pay; and how long after the last add() the writer is done.
- The first page of the list (``summaries(ListQuery())``) and a filtered, sorted page,
  medians of interleaved rounds (both stores, both queries, shuffled each round). By
  then the memory store's summaries are cached on its traces.
- The memory store's first listing, with no summary cached yet (exports cached), and
  with nothing cached (every trace exported: what the first listing after recording
  costs); the file store's first page from a new process (a new connection).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="tracer-bench-store-"))
SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(TMP / "bench.sqlite3")}
settings.configure(
    DEBUG=False,
    DATABASES={
        "default": SQLITE,
        "traced": {**SQLITE, "ENGINE": "tracer.backend", "WRAPPED_ENGINE": SQLITE["ENGINE"]},
    },
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "demo_app"],
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    USE_TZ=True,
    SECRET_KEY="bench",
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.db.models import Avg, Count  # noqa: E402

import tracer  # noqa: E402
from demo_app.models import Author, Book, Review  # noqa: E402
from tracer import filestore  # noqa: E402
from tracer.filestore import SQLiteStore  # noqa: E402
from tracer.store import ListQuery, MemoryStore  # noqa: E402
from tracer.trace import Trace  # noqa: E402

ALIAS = "traced"
FILTERED = ListQuery(path="/books/", method="GET", badges=("n_plus_ones",), sort="-duration_ms")


def list_page(page: int, fixed: bool) -> None:
    books = Book.objects.using(ALIAS).order_by("pk")
    if fixed:
        books = books.select_related("author", "publisher")
    shown = list(books[page * 12 : page * 12 + 12])
    for book in shown:  # 24 lazy loads without select_related: the N+1
        _ = (book.author.name, book.publisher.name)
    Book.objects.using(ALIAS).count()
    Author.objects.using(ALIAS).filter(pk=shown[0].author_id).exists()
    Author.objects.using(ALIAS).filter(pk=shown[0].author_id).exists()  # a duplicate
    if fixed:  # about as many statements as the N+1 page
        for book in shown[:10]:
            Review.objects.using(ALIAS).filter(book=book).aggregate(Avg("rating"))


def detail_page(pk: int) -> None:
    book = Book.objects.using(ALIAS).select_related("author").get(pk=pk)
    list(book.reviews.all())
    list(book.tags.all())
    for _ in range(3):
        list(Book.objects.using(ALIAS).filter(author=book.author).exclude(pk=pk)[:5])
    list(
        Author.objects.using(ALIAS)
        .annotate(n=Count("books"))
        .order_by("-n")
        .values_list("name", "n")[:10]
    )
    for tag in book.tags.all():
        list(tag.books.using(ALIAS).all()[:4])
    Review.objects.using(ALIAS).filter(book=book).aggregate(Avg("rating"))
    for _ in range(8):
        Book.objects.using(ALIAS).filter(price__lt=book.price).count()


def search_page(word: str) -> None:
    found = Book.objects.using(ALIAS).filter(title__icontains=word).select_related("author")
    for n in range(10):
        list(found[n * 5 : n * 5 + 5])
    for n in range(10):
        Book.objects.using(ALIAS).filter(title__icontains=word, price__gt=n).exists()


PAGES: list[tuple[str, str, Callable[[int], None]]] = [
    ("GET", "/books/n-plus-one/", lambda n: list_page(n % 50, fixed=False)),
    ("GET", "/books/select-related/", lambda n: list_page(n % 50, fixed=True)),
    ("GET", "/books/{n}/", lambda n: detail_page(n % 900 + 1)),
    ("POST", "/search/", lambda n: search_page(["river", "night", "stone"][n % 3])),
]


def record(n: int) -> Trace:
    """Request ``n``'s trace, as TracerMiddleware records it."""
    method, path, page = PAGES[n % len(PAGES)]
    path = path.format(n=n % 900 + 1)
    with tracer.capture(f"{method} {path}") as trace:
        trace.request = {"method": method, "path": path, "status": 200, "view": None}
        page(n)
    return trace


def fresh(traces: list[Trace]) -> None:
    """Forget the cached exports and summaries, as after recording."""
    for trace in traces:
        trace._exported = None
        trace._summary = None


def ms(seconds: float) -> str:
    return f"{seconds * 1000:10.3f}"


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traces", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--cold-rounds", type=int, default=3)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    call_command("seed", stdout=open("/dev/null", "w"))
    connections[ALIAS].ensure_connection()
    count = args.traces

    # As a server: each request is recorded, added, and dropped; the file store's
    # writer works meanwhile, on its own thread.
    files = SQLiteStore(TMP / "traces.sqlite3", count, 10**10)
    file_adds = []
    for n in range(count):
        trace = record(n)
        file_adds.append(timed(lambda: files.add(trace)))  # noqa: B023
    del trace
    write_all = timed(lambda: files.flush())

    # What a synchronous add() would cost: the writer's work for one new trace.
    scratch = SQLiteStore(TMP / "scratch.sqlite3", count, 10**10)
    exports, writes = [], []
    for n in range(100):
        trace = record(n)
        exports.append(timed(trace.to_dict))
        writes.append(timed(lambda: scratch._insert([filestore._row(trace)])))  # noqa: B023
    scratch.close()

    # The memory store keeps its traces (not exported until listed or shown).
    memory = MemoryStore(count, 10**10)
    memory_adds = []
    traces = []
    for n in range(count):
        trace = record(n)
        traces.append(trace)
        memory_adds.append(timed(lambda: memory.add(trace)))  # noqa: B023
    statements = statistics.mean(len(t.statements) for t in traces)

    # Listing, warm: interleaved rounds, medians.
    for store in (memory, files):  # warm-up: caches summaries, opens the connection
        store.summaries(ListQuery())
    rng = random.Random(0)
    cells = [(store, query) for store in ("memory", "files") for query in ("first", "filtered")]
    times: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
    stores = {"memory": memory, "files": files}
    queries = {"first": ListQuery(), "filtered": FILTERED}
    for _ in range(args.rounds):
        order = cells[:]
        rng.shuffle(order)
        for store, query in order:
            times[store, query].append(
                timed(lambda: stores[store].summaries(queries[query]))  # noqa: B023
            )
    totals = {name: store.summaries(FILTERED)[1] for name, store in stores.items()}
    assert totals["memory"] == totals["files"], totals

    # Listing, cold.
    summaries_cold, all_cold, new_process = [], [], []
    for _ in range(args.cold_rounds):
        for trace in traces:
            trace._summary = None
        summaries_cold.append(timed(lambda: memory.summaries(ListQuery())))
        fresh(traces)
        all_cold.append(timed(lambda: memory.summaries(ListQuery())))
        reader = SQLiteStore(files.path, count, 10**10)
        new_process.append(timed(lambda: reader.summaries(ListQuery())))  # noqa: B023
        reader.close()

    median = statistics.median
    print(
        f"tracer bench_store: {count} traces of {statements:.1f} statements on average "
        f"({sum(1 for t in traces if t.to_dict()['findings']['n_plus_ones'])} with an N+1), "
        f"Django {django.__version__}, SQLite {filestore.sqlite3.sqlite_version}, "
        f"Python {sys.version.split()[0]}; milliseconds, medians"
    )
    on_disk = sum(path.stat().st_size for path in TMP.glob("traces.sqlite3*"))
    print(
        f"file store: {len(files)} traces, {files.bytes / 1e6:.1f} MB of JSON (STORE_BYTES "
        f"counts this), {on_disk / 1e6:.1f} MB on disk (compressed)"
    )
    header = f"{'':58} {'MemoryStore':>12} {'SQLiteStore':>12}"
    print(header)
    print("-" * len(header))
    rows = [
        ("add(), on the request thread", median(memory_adds), median(file_adds)),
        ("  (file store) export of a new trace, with findings", None, median(exports)),
        ("  (file store) JSON + summary + params + INSERT of one", None, median(writes)),
        (f"  (file store) writer done, after the last of {count} adds", None, write_all),
        ("first page: summaries(ListQuery())", *(median(times[s, "first"]) for s in stores)),
        (
            f"filtered, sorted: {totals['files']} of {count} (path, method, badge, -duration)",
            *(median(times[s, "filtered"]) for s in stores),
        ),
        ("first listing, no summary cached (exports cached)", median(summaries_cold), None),
        ("first listing, nothing cached (every trace exported)", median(all_cold), None),
        ("first page from a new process (new connection)", None, median(new_process)),
    ]
    for label, memory_time, file_time in rows:
        cells_text = [ms(t) if t is not None else f"{'':10}" for t in (memory_time, file_time)]
        print(f"{label:58} {cells_text[0]:>12} {cells_text[1]:>12}")
    files.close()


if __name__ == "__main__":
    main()
