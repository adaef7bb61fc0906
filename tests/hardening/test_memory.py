"""Bounded memory: a long loop of requests through TracerMiddleware keeps the store
within STORE_TRACES and STORE_BYTES, and the process's memory flat.

Two measures, both taken once the store is full and every cache warm:
- Live objects (``gc.get_objects()``), cheap: counted at the warm point and at the
  end of the loop, they must be as many (a leak of one object a request would add
  thousands).
- tracemalloc, which slows every allocation several times over: on for the last
  WINDOW requests only. Then the store has turned over several times, so all it
  holds was allocated in the window: clearing it must leave (almost) nothing that
  the window allocated, and what it freed is bounded by the configured caps.
"""

from __future__ import annotations

import gc
import linecache
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings

from tracer import export, filestore
from tracer.findings import trace_findings
from tracer.store import estimate_bytes, get_store

pytestmark = pytest.mark.django_db

#: Requests in the loop, statements in each (half raw SQL, half ORM); fewer with the
#: file store, whose writer thread exports each trace beside the requests.
REQUESTS = 2000
STATEMENTS = 6
FILE_STATEMENTS = 2
#: Every VIEW_EVERY requests the app's list and the new trace's page are opened (the
#: page exports the trace, and the list summarises every kept trace).
VIEW_EVERY = 50
#: Requests before the warm point, and the last ones, traced by tracemalloc.
WARM = 200
WINDOW = 120
#: Traces the bounds let the stores keep.
KEPT = 40
#: Live objects the loop may end with beyond those at the warm point (a trace still
#: waiting for the file store's writer is about 300).
OBJECTS_SLACK = 1000
#: Bytes the window may leave allocated once the store is cleared: the caches that
#: hold a few recent objects (the file store's parsed traces, the last resolver match).
LEFT_SLACK = 64_000


def allow(request: object) -> bool:
    return True


APP = {
    "ROOT_URLCONF": "tests.hardening.urls",
    "MIDDLEWARE": ["tracer.middleware.TracerMiddleware"],
}


class Server:
    """Requests straight to Django's WSGI handler, as a server sends them. (Not the
    test client: it connects signal receivers on each request, which keeps memory.)"""

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def get(self, path: str, query: str = "") -> bytes:
        environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query}
        setup_testing_defaults(environ)
        statuses = []
        chunks = self.handler(environ, lambda status, headers: statuses.append(status))
        try:
            body = b"".join(chunks)
        finally:
            chunks.close()
        assert statuses == ["200 OK"], (path, statuses, body[:2000])
        return body


@contextmanager
def serving() -> Iterator[Server]:
    # In-memory SQLite ignores close(), but a server closes connections between
    # requests: on other engines that would end the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield Server()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def run(
    server: Server, start: int, stop: int, check: Callable[[int], None], statements: int
) -> None:
    for i in range(start, stop):
        trace_id = server.get(f"/tagged/default/m{i:05}/", f"n={statements}").decode()
        if i % VIEW_EVERY == 0:
            server.get(f"/__tracer__/trace/{trace_id}/")
            server.get("/__tracer__/")
        check(i)


def traced() -> int:
    gc.collect()
    # CPython's type attribute cache keeps up to 4096 recently looked-up names alive
    # (the ORM makes names like "as_" + vendor on each compile); linecache keeps the
    # source of the files a page showed lines of, read again after a checkcache()
    # (which logging a traceback does).
    sys._clear_type_cache()
    linecache.clearcache()
    return tracemalloc.get_traced_memory()[0]


def biggest() -> str:
    """Where the traced memory still allocated was allocated: for failure messages."""
    return "\n".join(map(str, tracemalloc.take_snapshot().statistics("lineno")[:10]))


def live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


@pytest.fixture
def tracing() -> Iterator[None]:
    get_store().clear()
    yield
    tracemalloc.stop()
    get_store().clear()


def loop(
    server: Server, check: Callable[[int], None], statements: int = STATEMENTS
) -> tuple[int, int]:
    """Run the requests: (live objects at the warm point, at the end)."""
    run(server, 0, WARM, check, statements)
    warm = live_objects()
    run(server, WARM, REQUESTS - WINDOW, check, statements)
    tracemalloc.start()
    run(server, REQUESTS - WINDOW, REQUESTS, check, statements)
    return warm, live_objects()


def test_memory_store_holds_its_bounds(tracing):
    with override_settings(**APP, TRACER={"SHOW_CALLBACK": allow}), serving() as server:
        server.get("/tagged/default/m00000/", f"n={STATEMENTS}")
        size = estimate_bytes(get_store().traces()[0])
    # The byte bound is the one that holds: KEPT traces of ``size`` bytes each.
    bounds = {"STORE_TRACES": 10 * KEPT, "STORE_BYTES": KEPT * size}
    with override_settings(**APP, TRACER={**bounds, "SHOW_CALLBACK": allow}), serving() as server:
        store = get_store()
        store.clear()

        def check(i: int) -> None:
            assert store.bytes <= bounds["STORE_BYTES"]
            assert len(store) == min(i + 1, KEPT)

        warm, end = loop(server, check)
        full = traced()
        store.clear()
        left = traced()
    assert end - warm <= OBJECTS_SLACK
    assert left <= LEFT_SLACK, biggest()
    # What the store held: its records (measured at up to 1.5 times their estimate),
    # the summaries and findings the list computed, and the exports of the pages.
    assert full - left <= 2 * bounds["STORE_BYTES"]


def test_exports_of_kept_traces_are_bounded(tracing):
    """Opening the page of every kept trace exports each: only the EXPORTS_KEPT most
    recently exported keep their export."""
    count = 2 * export.EXPORTS_KEPT
    with override_settings(**APP, TRACER={"SHOW_CALLBACK": allow}), serving() as server:
        ids = [server.get(f"/tagged/default/e{i:05}/", "n=20").decode() for i in range(count)]
        store = get_store()
        # Warm what the first page loads once (source lines, templates).
        server.get(f"/__tracer__/trace/{ids[0]}/")
        measured = store.get(ids[1])
        assert measured is not None
        tracemalloc.start()
        before = traced()
        trace_findings(measured)  # computed for every trace shown, and kept on it
        findings = traced() - before
        measured.to_dict()
        one = traced() - before - findings
        for trace_id in ids:
            server.get(f"/__tracer__/trace/{trace_id}/")
        held = traced() - before
    exported = [trace.id for trace in store.traces() if trace._exported is not None]
    assert exported == ids[: -export.EXPORTS_KEPT - 1 : -1]  # newest first
    assert held <= 1.1 * (export.EXPORTS_KEPT * one + count * findings)


def test_file_store_holds_its_bounds(tracing, tmp_path: Path):
    settings = {"SHOW_CALLBACK": allow, "STORE_PATH": str(tmp_path / "traces.sqlite3")}
    with override_settings(**APP, TRACER=settings), serving() as server:
        server.get("/tagged/default/m00000/", f"n={FILE_STATEMENTS}")
        assert get_store().flush(10)
        size = get_store().bytes  # of JSON
        get_store().clear()
    # The byte bound is the one that holds: about KEPT traces (their JSON differs by
    # a few bytes: durations).
    bounds = {"STORE_TRACES": 10 * KEPT, "STORE_BYTES": KEPT * size}
    with override_settings(**APP, TRACER={**settings, **bounds}), serving() as server:
        store = get_store()

        def check(i: int) -> None:
            if i % 250 == 0:
                assert store.flush(10)
                assert store.bytes <= bounds["STORE_BYTES"]
                assert len(store) >= min(i + 1, KEPT - 2)

        warm, end = loop(server, check, FILE_STATEMENTS)
        assert store.flush(10)
        assert store.bytes <= bounds["STORE_BYTES"]
        assert KEPT - 2 <= len(store) <= KEPT + 2
        assert store._pending == {}
        # What the store keeps in memory: the traces its pages parsed last, bounded.
        assert len(store._parsed) <= filestore.PARSED_KEPT
        store._parsed.clear()
        left = traced()
    assert end - warm <= OBJECTS_SLACK
    # The traces are in the file: once written, none of them stays in memory.
    assert left <= LEFT_SLACK, biggest()
