"""Concurrency: threads and asyncio tasks each record into their own trace.

Every statement carries a literal that names its thread or task and its position, so
a trace holding a statement of another thread or task, or missing one of its own,
shows as a wrong list of params.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connections
from django.test import AsyncClient, override_settings

import tracer
from tests.hardening.urls import ATAGGED_STATEMENTS, TAGGED_STATEMENTS
from tests.testapp.models import Author, Book
from tracer import recorder
from tracer.store import get_store
from tracer.trace import Trace

pytestmark = pytest.mark.django_db(databases="__all__")

THREADS = 8
#: Statements each thread runs.
PER_THREAD = 1000
TASKS = 100
#: Statements each task runs.
PER_TASK = 10


@pytest.fixture(autouse=True)
def empty_store() -> Iterator[None]:
    get_store().clear()
    yield
    get_store().clear()


def tagged(trace: Trace, alias: str) -> list[str]:
    """The tags of the statements in ``trace``; every other statement must be one the
    engine runs on connecting (no params)."""
    tags = []
    for statement in trace.statements:
        assert statement.alias == alias
        if statement.params is None:
            continue
        # exists() has a literal 1 among its params.
        strings = [param for param in statement.params if isinstance(param, str)]
        assert len(strings) == 1, (statement, statement.params)
        (tag,) = strings
        tags.append(tag)
    return tags


def run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(n)`` in ``count`` threads started together; their results, in order.
    Each thread closes its connections at the end."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = work(n)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def statements(alias: str, tag: str, count: int) -> list[str]:
    """Run ``count`` statements tagged ``tag-i``: raw SQL and ORM queries in turn."""
    authors = Author.objects.using(alias)
    with connections[alias].cursor() as cursor:
        for i in range(count):
            value = f"{tag}-{i}"
            if i % 2:
                assert not authors.filter(name=value).exists()
            else:
                cursor.execute("SELECT %s", [value])
                assert cursor.fetchone() == (value,)
    return [f"{tag}-{i}" for i in range(count)]


# MariaDB's connection setup adds two statements to each thread's trace: stay below
# SOFT_CAP, past which params are dropped.
@override_settings(TRACER={"SOFT_CAP": 2 * PER_THREAD})
def test_threads_each_in_their_own_capture(alias):
    def work(n: int) -> tuple[Trace, list[str]]:
        with tracer.capture(f"thread {n}") as trace:
            expected = statements(alias, f"t{n}", PER_THREAD)
        return trace, expected

    with tracer.capture("main") as main:
        results = run_threads(THREADS, work)
    assert main.statements == []
    for trace, expected in results:
        assert tagged(trace, alias) == expected
        # The ORM statements' operations are this trace's own.
        operations = [s.operation for s in trace.statements if s.operation is not None]
        assert len(operations) == PER_THREAD // 2
        assert all(trace.operations[op.index] is op for op in operations)
    stored = {trace.id: trace for trace in get_store().traces()}
    assert sorted(stored) == sorted([main.id, *(trace.id for trace, _ in results)])


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving() -> Iterator[int]:
    """A threaded WSGI server (Django's runserver's) on a free local port, each
    request in its own thread, closing its connections at the end of it; its
    middleware is the settings' when it starts."""
    httpd = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    httpd.set_app(WSGIHandler())
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    serving.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        serving.join()


REQUESTS_PER_THREAD = PER_THREAD // TAGGED_STATEMENTS


@override_settings(
    ROOT_URLCONF="tests.hardening.urls",
    MIDDLEWARE=["tracer.middleware.TracerMiddleware"],
    TRACER={"STORE_TRACES": THREADS * REQUESTS_PER_THREAD},
)
def test_threads_through_the_middleware_on_a_threaded_server(alias):
    def work(n: int) -> list[tuple[str, str]]:
        seen = []
        for r in range(REQUESTS_PER_THREAD):
            tag = f"t{n}r{r}"
            client = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
            try:
                client.request("GET", f"/tagged/{alias}/{tag}/")
                response = client.getresponse()
                assert response.status == 200
                seen.append((tag, response.read().decode()))
            finally:
                client.close()
        return seen

    with serving() as server:
        answers = [answer for seen in run_threads(THREADS, work) for answer in seen]
    store = get_store()
    assert len(store) == THREADS * REQUESTS_PER_THREAD
    for tag, trace_id in answers:
        trace = store.get(trace_id)
        assert trace is not None
        assert trace.label == f"GET /tagged/{alias}/{tag}/"
        assert tagged(trace, alias) == [f"{tag}-{i}" for i in range(TAGGED_STATEMENTS)]


def test_asyncio_tasks_each_in_their_own_capture(alias):
    async def task(n: int) -> tuple[Trace, list[str]]:
        expected = []
        with tracer.capture(f"task {n}") as trace:
            for i in range(PER_TASK):
                value = f"a{n}-{i}"
                if i % 2:
                    assert [a async for a in Author.objects.using(alias).filter(name=value)] == []
                else:
                    assert await Author.objects.using(alias).filter(name=value).acount() == 0
                expected.append(value)
                await asyncio.sleep(0)  # let the other tasks run in between
        return trace, expected

    async def main() -> list[tuple[Trace, list[str]]]:
        try:
            return await asyncio.gather(*(task(n) for n in range(TASKS)))
        finally:
            # The async ORM's thread has connections of its own.
            await sync_to_async(connections.close_all)()

    with tracer.capture("main") as outer:
        results = asyncio.run(main())
    # Tasks inherit the context they are created in: each capture is nested in the
    # outer one, which gets every task's statements when the task's capture ends.
    assert sorted(tagged(outer, alias)) == sorted(tag for _, tags in results for tag in tags)
    for trace, expected in results:
        assert tagged(trace, alias) == expected
        assert [op.trigger for op in trace.operations] == ["acount", "async for"] * (PER_TASK // 2)


@override_settings(
    ROOT_URLCONF="tests.hardening.urls",
    MIDDLEWARE=["tracer.middleware.TracerMiddleware"],
    TRACER={"STORE_TRACES": TASKS},
)
def test_asyncio_requests_through_the_async_middleware(alias):
    client = AsyncClient()

    async def request(n: int) -> tuple[str, Any]:
        tag = f"r{n}"
        response = await client.get(f"/atagged/{alias}/{tag}/")
        assert response.status_code == 200
        return tag, response

    async def main() -> list[tuple[str, Any]]:
        try:
            return await asyncio.gather(*(request(n) for n in range(TASKS)))
        finally:
            await sync_to_async(connections.close_all)()

    answers = asyncio.run(main())
    assert len(get_store()) == TASKS
    for tag, response in answers:
        trace = response.asgi_request.tracer_trace
        assert get_store().get(response.content.decode()) is trace
        assert trace.label == f"GET /atagged/{alias}/{tag}/"
        assert tagged(trace, alias) == [f"{tag}-{i}" for i in range(ATAGGED_STATEMENTS)]


ALWAYS_LIMIT = 300


# The rolling is the recorder's, the same on every engine: SQLite only.
@pytest.mark.parametrize("vendor", ["sqlite"], indirect=True)
@override_settings(
    TRACER={
        "CAPTURE": "always",
        "ALWAYS_TRACE_STATEMENTS": ALWAYS_LIMIT,
        "STORE_TRACES": THREADS * (PER_THREAD // ALWAYS_LIMIT + 1),
    }
)
def test_always_rolling_traces_under_threads(alias):
    def work(n: int) -> tuple[list[str], Trace]:
        expected = statements(alias, f"t{n}", PER_THREAD)
        # This thread's rolling trace, still open (asking for it through
        # active_trace() would start a new one when it is full).
        return expected, recorder._ambient.get()

    results = run_threads(THREADS, work)
    # Rolling traces are stored as they fill up, oldest first for each thread.
    finished = [t for t in reversed(get_store().traces()) if t.label == "always"]
    for n, (expected, live) in enumerate(results):
        own = [t for t in finished if t.statements and tagged(t, alias)[0].startswith(f"t{n}-")]
        rolled = [*own, live]
        assert all(len(t.statements) == ALWAYS_LIMIT for t in own)
        assert not live.finished and 0 < len(live.statements) <= ALWAYS_LIMIT
        assert [tag for t in rolled for tag in tagged(t, alias)] == expected
    # Every finished rolling trace is one thread's.
    assert len(finished) == THREADS * (PER_THREAD // ALWAYS_LIMIT)


@override_settings(TRACER={"CAPTURE": "always", "ALWAYS_TRACES_KEPT": 1})
def test_rolling_traces_of_ended_threads_stop_watching_reads():
    """A rolling trace that watches select_related reads and never fills up (its
    thread or task ended) stops watching once nothing keeps it: the related
    descriptors go back to Django's own."""
    ann = Author.objects.create(name="Ann")
    Book.objects.create(title="One", author=ann)
    watching = recorder.watches()

    def thread_that_ends(work: Callable[[], Any]) -> None:
        # A context of its own, dropped after: as a thread's or task's.
        contextvars.Context().run(work)

    thread_that_ends(lambda: list(Book.objects.select_related("author")))
    assert recorder.watches() == watching + 1
    # Another rolling trace pushes it out of always_traces(): nothing keeps it.
    thread_that_ends(lambda: statements("default", "other", 1))
    gc.collect()
    assert recorder.watches() == watching
