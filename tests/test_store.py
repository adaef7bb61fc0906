from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import product
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.test import override_settings

import tracer
from tests.testapp.models import Author, Book
from tracer import filestore, recorder
from tracer.filestore import SQLiteStore
from tracer.findings import KINDS, summary
from tracer.store import (
    CALL_BYTES,
    COMPILE_BYTES,
    EVENT_BYTES,
    IMPORTED,
    OPERATION_BYTES,
    PARAMS_SAMPLE,
    SORT_KEYS,
    STATEMENT_BYTES,
    TRACE_BYTES,
    ListQuery,
    MemoryStore,
    ParamsUnavailable,
    StoreError,
    estimate_bytes,
    get_store,
    summary_of,
)
from tracer.trace import UNRECORDED, Call, Compile, Event, Manager, Operation, Statement, Trace

ROOT = Path(__file__).resolve().parent.parent


def make_trace(*statements: tuple[object, object], label: str = "") -> Trace:
    trace = Trace(label)
    for sql, params in statements:
        trace.statements.append(Statement("default", "sqlite", "execute", sql, params, False))
    trace.finish()
    return trace


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    store = get_store()
    store.clear()
    yield store
    store.clear()


class Unsizeable:
    def __sizeof__(self) -> int:
        raise RuntimeError("no size")


# estimate_bytes


def test_estimate_empty_trace():
    assert estimate_bytes(Trace()) == TRACE_BYTES


def test_estimate_counts_records_sql_and_params():
    trace = make_trace(("SELECT %s, %s", [1, "ab"]), ("SELECT 1", None))
    trace.operations.append(Operation(0, "iteration", None, None, 0))
    trace.events.append(Event("default", "sqlite", "connect", 0))
    trace.events.append(Event("default", "sqlite", "close", 0))
    assert estimate_bytes(trace) == (
        TRACE_BYTES
        + 2 * STATEMENT_BYTES
        + OPERATION_BYTES
        + 2 * EVENT_BYTES
        + len("SELECT %s, %s")
        + sys.getsizeof(1)
        + sys.getsizeof("ab")
        + len("SELECT 1")
    )


def test_estimate_params_one_level_deep():
    rows = [(1, "a"), (2, "b")]
    trace = make_trace(("INSERT %s %s", rows), ("x", ("tuple",)))
    assert estimate_bytes(trace) == (
        TRACE_BYTES
        + 2 * STATEMENT_BYTES
        + len("INSERT %s %s")
        + 2 * sys.getsizeof((1, "a"))
        + len("x")
        + sys.getsizeof("tuple")
    )


def test_estimate_ignores_what_is_not_str_sql_or_sequence_params():
    trace = make_trace(
        (b"SELECT 1", {"a": "a long value that is not counted"}),
        (object(), UNRECORDED),
        ("COMMIT", None),
    )
    assert estimate_bytes(trace) == TRACE_BYTES + 3 * STATEMENT_BYTES + 8 + 6


def test_estimate_counts_compiles_and_lineage_calls_once():
    # Two batches of one insert share a compile; two evaluations of one QuerySet
    # share its lineage, and a QuerySet built on it shares its calls.
    trace = make_trace(("INSERT", None), ("INSERT", None), ("SELECT", None))
    insert, select = Compile(None), Compile(None)
    trace.statements[0].compile = trace.statements[1].compile = insert
    insert.statement = trace.statements[1]
    trace.statements[2].compile = select
    select.statement = trace.statements[2]
    manager = Manager("objects", object, None)
    first = Call(manager, "filter", (), None, None, 0, 0)
    second = Call(first, "order_by", (), None, None, 0, 0)
    third = Call(second, "exclude", (), None, None, 0, 0)
    for lineage in (second, second, third):
        operation = Operation(len(trace.operations), "iteration", None, None, 0)
        operation.lineage = lineage
        trace.operations.append(operation)
    assert estimate_bytes(trace) == (
        TRACE_BYTES
        + 3 * STATEMENT_BYTES
        + 3 * OPERATION_BYTES
        + 2 * COMPILE_BYTES
        + 3 * CALL_BYTES
        + len("INSERT") * 2
        + len("SELECT")
    )


def test_estimate_samples_long_params():
    params = [1] * PARAMS_SAMPLE + ["x" * 1000] * 150
    trace = make_trace(("INSERT", params))
    assert estimate_bytes(trace) == (
        TRACE_BYTES + STATEMENT_BYTES + len("INSERT") + sys.getsizeof(1) * 250
    )


# MemoryStore


def test_empty():
    store = MemoryStore(3, 10_000)
    assert (len(store), store.bytes, store.traces()) == (0, 0, [])
    assert store.get("nope") is None


def test_get_and_traces_newest_first():
    store = MemoryStore(3, 10_000)
    first, second = make_trace(label="first"), make_trace(label="second")
    store.add(first)
    store.add(second)
    assert store.traces() == [second, first]
    assert store.get(first.id) is first
    assert store.get(second.id) is second
    assert len(store) == 2
    assert store.bytes == 2 * TRACE_BYTES


def test_evicts_oldest_by_count():
    store = MemoryStore(3, 10**9)
    traces = [make_trace(label=str(n)) for n in range(5)]
    for trace in traces:
        store.add(trace)
    assert store.traces() == traces[:1:-1]
    assert store.get(traces[1].id) is None
    assert (len(store), store.bytes) == (3, 3 * TRACE_BYTES)


def test_evicts_oldest_by_bytes():
    store = MemoryStore(100, 3 * TRACE_BYTES)
    small = [make_trace(label=str(n)) for n in range(3)]
    for trace in small:
        store.add(trace)
    assert store.traces() == small[::-1]
    big = make_trace(("x" * STATEMENT_BYTES, None))  # two small traces' worth
    store.add(big)
    assert store.traces() == [big]
    assert store.bytes == estimate_bytes(big) == TRACE_BYTES + 2 * STATEMENT_BYTES


def test_trace_larger_than_max_bytes_is_kept_alone_until_the_next():
    store = MemoryStore(100, 1000)
    store.add(make_trace())
    huge = make_trace(("x" * 2000, None))
    store.add(huge)
    assert store.traces() == [huge]
    assert store.bytes == TRACE_BYTES + STATEMENT_BYTES + 2000
    small = make_trace()
    store.add(small)
    assert store.traces() == [small]
    assert store.bytes == TRACE_BYTES


def test_adding_again_moves_to_newest_and_recounts():
    store = MemoryStore(3, 10_000)
    first, second = make_trace(), make_trace()
    store.add(first)
    store.add(second)
    first.statements.append(Statement("default", "sqlite", "execute", "SELECT 1", None, False))
    store.add(first)
    assert store.traces() == [first, second]
    assert store.bytes == 2 * TRACE_BYTES + STATEMENT_BYTES + len("SELECT 1")


def test_clear():
    store = MemoryStore(3, 10_000)
    trace = make_trace()
    store.add(trace)
    store.clear()
    assert (len(store), store.bytes, store.traces(), store.get(trace.id)) == (0, 0, [], None)


def test_resize_evicts():
    store = MemoryStore(5, 10_000)
    traces = [make_trace() for _ in range(5)]
    for trace in traces:
        store.add(trace)
    store.resize(2, 10_000)
    assert store.traces() == [traces[4], traces[3]]
    store.resize(5, TRACE_BYTES)
    assert store.traces() == [traces[4]]
    assert (store.max_traces, store.max_bytes, store.bytes) == (5, TRACE_BYTES, TRACE_BYTES)


def test_add_never_raises_logs_first_failure_and_counts(caplog):
    store = MemoryStore(3, 10_000)
    kept = make_trace()
    store.add(kept)
    with caplog.at_level(logging.ERROR, logger="tracer"):
        store.add(make_trace(("SELECT %s", [Unsizeable()])))
        store.add(make_trace(("SELECT %s", [Unsizeable()])))
    assert store.failures == 2
    assert [r.getMessage() for r in caplog.records] == [
        "tracer could not store a trace; the request or block it recorded was not "
        "affected. Later failures are counted (store.failures)."
    ]
    assert caplog.records[0].exc_info[1].args == ("no size",)
    assert store.traces() == [kept]
    assert store.bytes == TRACE_BYTES


def test_threads_adding_and_reading():
    store = MemoryStore(50, 10**9)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    added: list[list[Trace]] = [[] for _ in range(8)]

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(200):
                trace = make_trace((f"SELECT {n}", [i]))
                added[n].append(trace)
                store.add(trace)
                store.get(trace.id)
                store.traces()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    kept = store.traces()
    assert len(kept) == len(store) == 50
    assert len({trace.id for trace in kept}) == 50
    assert store.bytes == sum(estimate_bytes(trace) for trace in kept)
    # Each thread's kept traces are its newest, in its own order.
    for traces in added:
        mine = [trace for trace in kept if trace in traces]
        assert mine == traces[len(traces) - len(mine) :][::-1]


# get_store


def test_get_store_is_one_store_with_default_limits(store):
    assert get_store() is store
    assert (store.max_traces, store.max_bytes) == (100, 50_000_000)


def test_get_store_follows_override_settings(store):
    with override_settings(TRACER={"STORE_TRACES": 2, "STORE_BYTES": 10 * TRACE_BYTES}):
        assert get_store() is store
        assert (store.max_traces, store.max_bytes) == (2, 10 * TRACE_BYTES)
        traces = [make_trace() for _ in range(3)]
        for trace in traces:
            get_store().add(trace)
        assert get_store().traces() == [traces[2], traces[1]]
    assert get_store() is store
    assert (store.max_traces, store.max_bytes) == (100, 50_000_000)
    assert store.traces() == [traces[2], traces[1]]


@override_settings(TRACER={"STORE_TRACES": 0})
def test_get_store_keeps_defaults_when_setting_is_invalid(store):
    assert (get_store().max_traces, get_store().max_bytes) == (100, 50_000_000)


# Both stores: the same behaviour, MemoryStore and SQLiteStore (tracer.filestore) -----


@pytest.fixture(params=["memory", "sqlite"])
def new_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., MemoryStore | SQLiteStore]]:
    """Makes empty stores of one kind; file stores each in their own file."""
    made: list[MemoryStore | SQLiteStore] = []

    def make(max_traces: int = 100, max_bytes: int = 10**9) -> MemoryStore | SQLiteStore:
        store: MemoryStore | SQLiteStore
        if request.param == "memory":
            store = MemoryStore(max_traces, max_bytes)
        else:
            store = SQLiteStore(tmp_path / f"traces{len(made)}.sqlite3", max_traces, max_bytes)
        made.append(store)
        return store

    yield make
    for store in made:
        if isinstance(store, SQLiteStore):
            store.close()


def ids(traces: list[Trace]) -> list[str]:
    return [trace.id for trace in traces]


def size(store: MemoryStore | SQLiteStore, trace: Trace) -> int:
    """What ``trace`` counts against ``store.max_bytes``."""
    if isinstance(store, SQLiteStore):
        return int(filestore._row(trace)["bytes"])
    return estimate_bytes(trace)


def test_both_empty(new_store):
    store = new_store()
    assert (len(store), store.bytes, store.traces(), store.get("nope")) == (0, 0, [], None)
    assert store.summaries(ListQuery()) == ([], 0)


def test_both_get_and_traces_newest_first(new_store):
    store = new_store()
    first, second = make_trace(label="first"), make_trace(label="second")
    store.add(first)
    store.add(second)
    assert ids(store.traces()) == [second.id, first.id]
    assert store.get(first.id).to_dict() == json_copy(first.to_dict())
    assert len(store) == 2
    assert store.bytes == size(store, first) + size(store, second)


def test_both_evict_oldest_by_count(new_store):
    store = new_store(3)
    traces = [make_trace(label=str(n)) for n in range(5)]
    for trace in traces:
        store.add(trace)
    assert ids(store.traces()) == ids(traces[:1:-1])
    assert store.get(traces[1].id) is None
    assert len(store) == 3


def test_both_evict_oldest_by_bytes_keeping_the_newest(new_store):
    probe = new_store()
    small = [make_trace(("SELECT 1", None), label=str(n)) for n in range(3)]
    big = make_trace(*[("SELECT 1", None)] * 10, label="big")
    tail = make_trace(("SELECT 1", None), label="tail")
    store = new_store(100, sum(size(probe, trace) for trace in small))
    assert size(probe, big) > store.max_bytes
    for trace in small:
        store.add(trace)
    assert ids(store.traces()) == ids(small[::-1])
    store.add(big)  # larger than max_bytes: kept alone
    assert ids(store.traces()) == [big.id]
    store.add(tail)
    assert ids(store.traces()) == [tail.id]
    assert store.bytes == size(probe, tail)


def test_both_adding_again_moves_to_newest(new_store):
    store = new_store()
    first, second = make_trace(label="first"), make_trace(label="second")
    store.add(first)
    store.add(second)
    store.add(first)
    assert ids(store.traces()) == [first.id, second.id]
    assert len(store) == 2


def test_both_clear(new_store):
    store = new_store()
    trace = make_trace()
    store.add(trace)
    store.clear()
    assert (len(store), store.traces(), store.get(trace.id)) == (0, [], None)
    assert store.summaries(ListQuery()) == ([], 0)


def test_both_resize(new_store):
    store = new_store(5)
    traces = [make_trace() for _ in range(5)]
    for trace in traces:
        store.add(trace)
    store.resize(2, 10**9)
    store.add(traces[4])  # a file store applies its bounds when it writes
    assert ids(store.traces()) == [traces[4].id, traces[3].id]


def test_both_raw_params_for_explain(new_store):
    store = new_store()
    trace = make_trace(("SELECT %s, %s", (Decimal("1.50"), "a")), ("SELECT 1", None))
    store.add(trace)
    if isinstance(store, SQLiteStore):
        store.flush(5)
    assert store.raw_params(trace.id, 0) == (Decimal("1.50"), "a")
    assert store.raw_params(trace.id, 1) is None
    for trace_id, index in ((trace.id, 2), ("nope", 0)):
        with pytest.raises(ParamsUnavailable) as raised:
            store.raw_params(trace_id, index)
        assert str(raised.value) == f"No statement {index} of trace {trace_id!r} in the store."
    loaded = Trace.from_dict(trace.to_dict())
    store.add(loaded)
    with pytest.raises(ParamsUnavailable) as raised:
        store.raw_params(trace.id, 0)
    assert str(raised.value) == IMPORTED


# Lists: the six traces of LISTED, added oldest first.


def listed(
    label: str,
    at: float,
    *,
    request: tuple[str, str, int | None] | None = None,
    statements: int = 1,
    duration: float = 1.0,
    db: float = 0.5,
    orm: float = 0.0,
    n_plus_ones: int = 0,
    duplicates: int = 0,
    slow: int = 0,
) -> Trace:
    """A trace (loaded from data) with exactly these list figures."""
    backend = {
        "in_atomic_block": False,
        "execute_ms": 0.5,
        "fetch_ms": 0.0,
        "fetch_calls": 0,
        "rows_fetched": 0,
        "rowcount": -1,
        "error": None,
    }
    statement = {
        "alias": "default",
        "vendor": "sqlite",
        "kind": "execute",
        "sql": "SELECT 1",
        "params": None,
        "stages": {"backend": backend},
    }
    first = {**statement, "stages": {"backend": {**backend, "convert_ms": orm}}}
    found: dict[str, list[Any]] = {kind: [] for kind in KINDS}
    found.update(n_plus_ones=[{}] * n_plus_ones, duplicates=[{}] * duplicates, slow=[{}] * slow)
    method, path, status = request or (None, None, None)
    return Trace.from_dict(
        {
            "format": "tracer-trace/1",
            "id": f"{label}-{at}",
            "label": label,
            "started_at": at,
            "duration_ms": duration,
            "db_ms": db,
            "request": None
            if request is None
            else {"method": method, "path": path, "status": status, "view": None},
            "dropped": {},
            "operations": [],
            "events": [],
            "statements": [first] + [statement] * (statements - 1) if statements else [],
            "findings": {**found, "failed": []},
        }
    )


LISTED = {
    "A": dict(
        request=("GET", "/books/", 200),
        statements=3,
        duration=10.0,
        db=2.0,
        orm=1.0,
        n_plus_ones=1,
    ),
    "B": dict(
        request=("POST", "/books/1/", 302),
        statements=5,
        duration=30.0,
        db=8.0,
        orm=3.0,
        duplicates=2,
    ),
    "C": dict(statements=1, duration=5.0, db=1.0, slow=1),
    "D": dict(
        request=("GET", "/authors/", 500),
        statements=5,
        duration=30.0,
        db=4.0,
        orm=2.0,
        n_plus_ones=2,
        duplicates=1,
        slow=1,
    ),
    "E": dict(request=("GET", "/books/2/", None), statements=0, duration=1.0, db=0.0),
    "F": dict(statements=2, duration=2.0, db=1.0),
}
# Labels: a request's is "GET /books/"; C is "report"; F has none.
LABELS = {"C": "report", "F": ""}


@pytest.fixture
def listing(new_store) -> tuple[MemoryStore | SQLiteStore, dict[str, Trace]]:
    store = new_store()
    traces = {}
    for n, (name, figures) in enumerate(LISTED.items()):
        request = figures.get("request")
        label = LABELS.get(name, f"{request[0]} {request[1]}" if request else "")
        traces[name] = listed(label, 100.0 + n, **figures)  # type: ignore[arg-type]
        store.add(traces[name])
    return store, traces


@pytest.mark.parametrize(
    ("query", "expected", "total"),
    [
        (ListQuery(), "FEDCBA", 6),
        (ListQuery(path="books"), "EBA", 3),
        (ListQuery(path="report"), "C", 1),  # the label, outside requests
        (ListQuery(path="BOOKS"), "", 0),  # case-sensitive
        (ListQuery(method="GET"), "EDA", 3),
        (ListQuery(min_statements=5), "DB", 2),
        (ListQuery(badges=("n_plus_ones",)), "DA", 2),
        (ListQuery(badges=("n_plus_ones", "duplicates")), "D", 1),
        (ListQuery(badges=("slow",)), "DC", 2),
        (ListQuery(since=102.0), "FED", 3),
        (ListQuery(sort="started_at"), "ABCDEF", 6),
        # Ties go newest first, in either direction; None last, in either direction.
        (ListQuery(sort="statements"), "ECFADB", 6),
        (ListQuery(sort="-statements"), "DBAFCE", 6),
        (ListQuery(sort="-duration_ms"), "DBACFE", 6),
        (ListQuery(sort="db_ms"), "EFCADB", 6),
        (ListQuery(sort="-orm_ms"), "BDAFEC", 6),
        (ListQuery(sort="status"), "ABDFEC", 6),
        (ListQuery(sort="-status"), "DBAFEC", 6),
        (ListQuery(sort="path"), "DABEFC", 6),
        (ListQuery(sort="-path"), "EBADFC", 6),
        (ListQuery(offset=2, limit=2), "DC", 6),
        (ListQuery(offset=5, limit=2), "A", 6),
        (ListQuery(offset=10), "", 6),
        (ListQuery(limit=0), "", 6),
        (ListQuery(method="GET", sort="-duration_ms", limit=1), "D", 3),
        (ListQuery(path="/", method="GET", min_statements=1, badges=("slow",)), "D", 1),
    ],
)
def test_both_list_exactly(listing, query, expected, total):
    store, traces = listing
    rows, count = store.summaries(query)
    assert rows == [summary_of(traces[name]) for name in expected]
    assert count == total


def test_both_list_summaries_as_findings_summary(listing):
    store, traces = listing
    rows, _ = store.summaries(ListQuery(limit=1))
    assert rows == [
        {
            "id": "-105.0",
            "label": "",
            "started_at": 105.0,
            "method": None,
            "path": None,
            "status": None,
            "statements": 2,
            "duration_ms": 2.0,
            "db_ms": 1.0,
            "orm_ms": 0.0,
            "n_plus_ones": 0,
            "duplicates": 0,
            "slow": 0,
            "dropped": 0,
        }
    ]
    assert rows == [summary(traces["F"].to_dict())]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            ListQuery(sort="-size"),
            "Cannot sort traces by '-size'; use one of ('started_at', 'statements', "
            "'duration_ms', 'db_ms', 'orm_ms', 'path', 'status').",
        ),
        (
            ListQuery(badges=("slow", "nope")),
            "Unknown badge(s) ['nope']; use some of ('n_plus_ones', 'duplicates', 'slow').",
        ),
        (ListQuery(offset=-1), "offset and limit must be >= 0, not -1 and 50."),
        (ListQuery(limit=-5), "offset and limit must be >= 0, not 0 and -5."),
    ],
)
def test_both_refuse_bad_queries(new_store, query, message):
    store = new_store()
    store.add(make_trace())
    with pytest.raises(ValueError) as raised:
        store.summaries(query)
    assert str(raised.value) == message


def test_file_store_lists_as_memory_store_for_every_query(tmp_path):
    memory = MemoryStore(100, 10**9)
    files = SQLiteStore(tmp_path / "traces.sqlite3", 100, 10**9)
    for n, (name, figures) in enumerate(LISTED.items()):
        request = figures.get("request")
        label = LABELS.get(name, f"{request[0]} {request[1]}" if request else "")
        trace = listed(label, 100.0 + n, **figures)  # type: ignore[arg-type]
        memory.add(trace)
        files.add(trace)
    compared = 0
    for path, method, minimum, badges, sort, offset, limit, since in product(
        ("", "books", "/", "report", "zzz"),
        ("", "GET", "POST"),
        (0, 2, 5),
        ((), ("slow",), ("n_plus_ones", "duplicates")),
        [*SORT_KEYS, *(f"-{key}" for key in SORT_KEYS)],
        (0, 1),
        (2, 50),
        (None, 101.0),
    ):
        query = ListQuery(path, method, minimum, badges, sort, offset, limit, since)
        assert files.summaries(query) == memory.summaries(query), query
        compared += 1
    assert compared == 5 * 3 * 3 * 3 * 14 * 2 * 2 * 2
    files.close()


# The file store ------------------------------------------------------------------


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "traces.sqlite3", 100, 10**9)
    yield store
    store.close()


def json_copy(data: Any) -> Any:
    return json.loads(json.dumps(data))


@pytest.mark.django_db
def test_file_store_round_trip_of_a_recorded_trace(file_store):
    ann = Author.objects.create(name="Ann")
    for title in ("One", "Two", "Three"):
        Book.objects.create(title=title, author=ann, price=Decimal("9.50"))
    with tracer.capture("books") as trace:
        names = [book.author.name for book in Book.objects.filter(price__lt=Decimal("10"))]
    assert names == ["Ann"] * 3  # an N+1
    file_store.add(trace)
    assert file_store.get(trace.id) is trace  # not written yet: as it is
    assert file_store.flush(5)

    loaded = file_store.get(trace.id)
    assert loaded is not trace
    assert loaded.imported
    assert loaded.to_dict() == json_copy(trace.to_dict())
    assert loaded.to_dict()["findings"]["n_plus_ones"] != []
    assert [s.sql for s in loaded.statements] == [s.sql for s in trace.statements]
    assert file_store.summaries(ListQuery()) == ([summary_of(trace)], 1)
    assert file_store.get(trace.id) is loaded  # kept parsed


def test_file_store_is_shared_by_its_instances(tmp_path):
    path = tmp_path / "traces.sqlite3"
    one, two = SQLiteStore(path, 100, 10**9), SQLiteStore(path, 100, 10**9)
    first, second = make_trace(label="one"), make_trace(label="two")
    one.add(first)
    two.add(second)
    one.flush(5)
    two.flush(5)
    assert ids(one.traces()) == ids(two.traces()) == [second.id, first.id]
    one.close()
    two.close()


def test_file_store_writes_in_the_background(file_store):
    """add() on the request thread only queues; the writer thread writes."""
    writes: list[str] = []
    insert = file_store._insert

    def recording_insert(rows: list[dict[str, Any]]) -> None:
        writes.append(threading.current_thread().name)
        insert(rows)

    file_store._insert = recording_insert  # type: ignore[method-assign]
    file_store.add(make_trace())
    assert file_store.flush(5)
    assert writes == ["tracer-store-writer"]


def test_file_store_file_layout(file_store):
    file_store.add(make_trace(("SELECT %s", [1])))
    file_store.flush(5)
    connection = sqlite3.connect(file_store.path)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("PRAGMA user_version").fetchone() == (filestore.SCHEMA_VERSION,)
    assert connection.execute("PRAGMA application_id").fetchone() == (0x54726163,)
    assert sorted(
        name
        for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        if not name.startswith("sqlite_")
    ) == [f"traces_{key}" for key in sorted(SORT_KEYS)]
    connection.close()


def test_file_store_lists_from_columns_not_json(file_store):
    """A list reads the summary columns: no trace's JSON is parsed."""
    for n in range(3):
        file_store.add(listed(f"t{n}", float(n)))
    file_store.flush(5)
    with mock.patch("tracer.trace.Trace.from_dict", side_effect=AssertionError("parsed")):
        rows, total = file_store.summaries(ListQuery(sort="-duration_ms"))
    assert ([row["label"] for row in rows], total) == (["t2", "t1", "t0"], 3)


def test_file_store_reads_wait_for_this_process_adds(file_store):
    trace = make_trace()
    file_store.add(trace)
    assert file_store.summaries(ListQuery())[1] == 1
    assert len(file_store) == 1


# Failures: add() never raises; reads raise StoreError saying what is wrong.

FAILED = (
    "tracer could not store a trace in {path}; the request or block it recorded was not "
    "affected. Later failures are counted (store.failures)."
)


def test_file_store_in_a_missing_directory(tmp_path, caplog):
    path = tmp_path / "missing" / "traces.sqlite3"
    store = SQLiteStore(path, 100, 10**9)
    with caplog.at_level(logging.ERROR, logger="tracer"):
        store.add(make_trace())
        store.add(make_trace())
        assert store.flush(5)
    assert store.failures == 2
    assert [r.getMessage() for r in caplog.records] == [FAILED.format(path=path)]
    with pytest.raises(StoreError) as raised:
        store.summaries(ListQuery())
    assert str(raised.value) == (
        f"The trace store {path} cannot be used: unable to open database file."
    )
    store.close()


def test_file_store_in_a_corrupt_file(tmp_path, caplog):
    path = tmp_path / "traces.sqlite3"
    path.write_bytes(b"not a database, " * 512)
    store = SQLiteStore(path, 100, 10**9)
    with caplog.at_level(logging.ERROR, logger="tracer"):
        store.add(make_trace())
        assert store.flush(5)
    assert store.failures == 1
    assert len(caplog.records) == 1
    for read in (lambda: store.summaries(ListQuery()), store.traces, lambda: store.get("x")):
        with pytest.raises(StoreError) as raised:
            read()
        assert str(raised.value) == (
            f"The trace store {path} cannot be used: file is not a database."
        )
    assert path.read_bytes() == b"not a database, " * 512
    store.close()


def test_file_store_never_writes_to_another_applications_database(tmp_path):
    path = tmp_path / "db.sqlite3"
    theirs = sqlite3.connect(path)
    theirs.execute("CREATE TABLE auth_user (id INTEGER PRIMARY KEY)")
    theirs.commit()
    theirs.close()
    before = path.read_bytes()
    store = SQLiteStore(path, 100, 10**9)
    store.add(make_trace())
    assert store.flush(5)
    assert store.failures == 1
    with pytest.raises(StoreError) as raised:
        len(store)
    assert str(raised.value) == (
        f"{path} is not a tracer store: it holds another application's data (auth_user). "
        "Set TRACER['STORE_PATH'] to a file of its own; the tracer creates it."
    )
    assert path.read_bytes() == before
    store.close()


def test_file_store_refuses_a_file_of_a_newer_version(tmp_path):
    path = tmp_path / "traces.sqlite3"
    old = SQLiteStore(path, 100, 10**9)
    old.add(make_trace())
    old.close()
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {filestore.SCHEMA_VERSION + 1}")
    newer.close()
    store = SQLiteStore(path, 100, 10**9)
    with pytest.raises(StoreError) as raised:
        store.summaries(ListQuery())
    assert str(raised.value) == (
        f"The trace store {path} was written by a newer version of the tracer (schema "
        f"version {filestore.SCHEMA_VERSION + 1}; this version reads "
        f"{filestore.SCHEMA_VERSION}). Upgrade the tracer, or set TRACER['STORE_PATH'] to "
        "another file."
    )
    store.add(make_trace())
    assert store.flush(5)
    assert store.failures == 1
    store.close()


def test_file_store_counts_a_trace_it_cannot_export(file_store, caplog):
    class Broken(Trace):
        def to_dict(self) -> dict[str, Any]:
            raise RuntimeError("cannot export")

    kept = make_trace()
    with caplog.at_level(logging.ERROR, logger="tracer"):
        file_store.add(Broken())
        file_store.add(kept)
        assert file_store.flush(5)
    assert file_store.failures == 1
    assert caplog.records[0].exc_info[1].args == ("cannot export",)
    assert ids(file_store.traces()) == [kept.id]


def test_file_store_drops_traces_when_its_queue_is_full(file_store, caplog, monkeypatch):
    monkeypatch.setattr(filestore, "QUEUE_MAX", 1)
    monkeypatch.setattr(file_store, "_start_writer", lambda: None)
    with caplog.at_level(logging.ERROR, logger="tracer"):
        file_store.add(make_trace())
        file_store.add(make_trace())
    assert file_store.failures == 1
    assert [r.getMessage() for r in caplog.records] == [
        "tracer could not store a trace (1 traces are waiting to be "
        f"written to {file_store.path}; this one was dropped); the request or block it "
        "recorded was not affected. Later failures are counted (store.failures)."
    ]


# Several processes


CHILD = """
import sys
import django
from django.conf import settings

path, label, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings.configure(
    DATABASES={
        "default": {
            "ENGINE": "tracer.backend",
            "WRAPPED_ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:",
        }
    },
    TRACER={"STORE_PATH": path, "STORE_TRACES": 1000},
)
django.setup()

import tracer
from django.db import connection

for n in range(count):
    with tracer.capture(f"{label} {n}"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s", [n])
# Queued traces are written at exit.
"""


def test_traces_of_other_processes_are_listed(tmp_path):
    path = tmp_path / "traces.sqlite3"
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(path), name, "40"], cwd=ROOT)
        for name in ("one", "two")
    ]
    store = SQLiteStore(path, 1000, 10**9)
    mine = [make_trace(label=f"mine {n}") for n in range(40)]
    for trace in mine:
        store.add(trace)
    assert [child.wait(60) for child in children] == [0, 0]

    rows, total = store.summaries(ListQuery(limit=1000))
    assert total == 120
    assert sorted(row["label"] for row in rows) == sorted(
        f"{name} {n}" for name in ("one", "two", "mine") for n in range(40)
    )
    (theirs,) = [row for row in rows if row["label"] == "two 7"]
    loaded = store.get(theirs["id"])
    assert [(s.sql, s.params) for s in loaded.statements] == [("SELECT %s", [7])]
    assert store.raw_params(theirs["id"], 0) == [7]
    store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_process_uses_its_own_writer_and_connections(file_store):
    parent = make_trace(label="parent")
    file_store.add(parent)
    assert file_store.flush(5)
    assert len(file_store) == 1  # the parent has a writer and connections now

    def child() -> None:
        for n in range(3):
            file_store.add(make_trace(label=f"child {n}"))
        os._exit(0 if file_store.flush(10) else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert [row["label"] for row in file_store.summaries(ListQuery())[0]] == [
        "child 2",
        "child 1",
        "child 0",
        "parent",
    ]


# The store's own writes are in no trace


@pytest.mark.django_db
@pytest.mark.parametrize("capture", ["explicit", "always"])
def test_the_file_store_writes_no_statement_into_any_trace(tmp_path, capture):
    path = str(tmp_path / "traces.sqlite3")
    settings = {"STORE_PATH": path, "CAPTURE": capture, "ALWAYS_TRACE_STATEMENTS": 2}
    with override_settings(TRACER=settings):
        store = get_store()
        assert isinstance(store, SQLiteStore)
        with tracer.capture("first") as first:
            Author.objects.create(name="Ann")
        for name in ("Bob", "Cy", "Di"):  # outside any capture: rolling traces
            Author.objects.create(name=name)
        with tracer.capture("while writing") as second:
            store.add(make_trace())
            list(Author.objects.all())
            assert store.flush(5)
        with tracer.capture("after") as third:
            store.summaries(ListQuery())
            store.get(first.id)
            list(Author.objects.all())
        assert store.flush(5)
        stored = store.traces()
        always = recorder.always_traces()
    store.close()

    assert [len(t.statements) for t in (first, second, third)] == [1, 1, 1]
    everything = [first, second, third, *stored, *always]
    sql = [str(s.sql) for t in everything for s in t.statements]
    assert sql and not [text for text in sql if re.search(r"\btraces\b|\btrace_data\b", text)]
    assert {t.label for t in stored} >= {"first", "while writing", "after"}
    if capture == "always":
        assert "always" in {t.label for t in stored}  # rolling traces, stored when full


# get_store


def test_get_store_is_the_file_store_while_store_path_is_set(store, tmp_path):
    path = str(tmp_path / "traces.sqlite3")
    with override_settings(TRACER={"STORE_PATH": path, "STORE_TRACES": 7}):
        file_store = get_store()
        assert isinstance(file_store, SQLiteStore)
        assert (file_store.path, file_store.max_traces, file_store.max_bytes) == (
            path,
            7,
            50_000_000,
        )
        with tracer.capture("kept in the file"):
            pass
        assert [row["label"] for row in file_store.summaries(ListQuery())[0]] == [
            "kept in the file"
        ]
    assert get_store() is store
    assert store.traces() == []
    with override_settings(TRACER={"STORE_PATH": path}):
        assert get_store() is file_store
        assert file_store.max_traces == 100
    file_store.close()
