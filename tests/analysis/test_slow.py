"""Slow statements, from real recorded traces with their timings set by the test: the
analysis must not depend on how fast the machine runs the queries."""

from __future__ import annotations

import sys

import pytest
from django.db import connections, transaction
from django.test import override_settings

import tracer
from tests.testapp.models import Author
from tracer.analysis.slow import slow_statements

pytestmark = pytest.mark.django_db(databases="__all__")

HERE = __file__
MS = 1_000_000


def lineno() -> int:
    return sys._getframe(1).f_lineno


def timed(trace: tracer.Trace, *durations: tuple[int | None, int]) -> None:
    """Give the trace's statements these (execute ns, fetch ns), in order."""
    for statement, (duration_ns, fetch_ns) in zip(trace.statements, durations, strict=True):
        statement.duration_ns = duration_ns
        statement.fetch_ns = fetch_ns


def test_slowest_first_with_index_time_and_location(alias):
    Author.objects.using(alias).create(name="Ann")
    with tracer.capture() as trace:
        first = lineno() + 1
        list(Author.objects.using(alias).all())
        second = lineno() + 1
        Author.objects.using(alias).filter(name="Ann").count()
        third = lineno() + 1
        Author.objects.using(alias).exists()
    timed(trace, (150 * MS, 0), (40 * MS, 0), (300 * MS, 5 * MS))

    found = slow_statements(trace, threshold_ms=100)

    assert [(s.index, s.duration_ns, s.ms) for s in found] == [
        (2, 305 * MS, 305.0),
        (0, 150 * MS, 150.0),
    ]
    assert [s.location for s in found] == [f"{HERE}:{third}", f"{HERE}:{first}"]
    assert [s.statement for s in found] == [trace.statements[2], trace.statements[0]]
    assert slow_statements(trace, threshold_ms=10)[2].location == f"{HERE}:{second}"


def test_fetch_time_counts_and_the_threshold_is_exclusive():
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            for value in range(4):
                cursor.execute("SELECT %s", [value])
                cursor.fetchall()
    # Exactly 100 ms is not slower than 100 ms; 100 ms and 1 ns is.
    timed(trace, (60 * MS, 40 * MS), (60 * MS, 40 * MS + 1), (None, 101 * MS), (99 * MS, 0))

    assert [(s.index, s.duration_ns) for s in slow_statements(trace, 100)] == [
        (2, 101 * MS),
        (1, 100 * MS + 1),
    ]


def test_threshold_defaults_to_the_slow_ms_setting():
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            for value in range(3):
                cursor.execute("SELECT %s", [value])
    timed(trace, (99 * MS, 0), (101 * MS, 0), (20 * MS, 0))

    # The default SLOW_MS is 100.
    assert [s.index for s in slow_statements(trace)] == [1]
    with override_settings(TRACER={"SLOW_MS": 10}):
        assert [s.index for s in slow_statements(trace)] == [1, 0, 2]
    with override_settings(TRACER={"SLOW_MS": 0}):
        assert [s.index for s in slow_statements(trace, threshold_ms=50)] == [1, 0]


def test_ties_keep_the_order_they_ran_in():
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            for value in range(3):
                cursor.execute("SELECT %s", [value])
    timed(trace, (5 * MS, 0), (7 * MS, 0), (5 * MS, 0))

    assert [s.index for s in slow_statements(trace, 1)] == [1, 0, 2]


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_transaction_statements_count(alias):
    with tracer.capture() as trace:
        with transaction.atomic(using=alias):
            Author.objects.using(alias).create(name="Ann")
    commit = [i for i, s in enumerate(trace.statements) if s.sql == "COMMIT"]
    assert len(commit) == 1
    for statement in trace.statements:
        statement.duration_ns, statement.fetch_ns = 1 * MS, 0
    trace.statements[commit[0]].duration_ns = 500 * MS

    [slow] = slow_statements(trace, 100)
    assert (slow.index, slow.statement.kind, slow.ms) == (commit[0], "transaction", 500.0)


def test_empty_trace():
    with tracer.capture() as trace:
        pass
    assert slow_statements(trace, 0) == []
