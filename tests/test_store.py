from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator

import pytest
from django.test import override_settings

from tracer.store import (
    EVENT_BYTES,
    OPERATION_BYTES,
    PARAMS_SAMPLE,
    STATEMENT_BYTES,
    TRACE_BYTES,
    MemoryStore,
    estimate_bytes,
    get_store,
)
from tracer.trace import UNRECORDED, Event, Operation, Statement, Trace


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
