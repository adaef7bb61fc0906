"""The findings an export carries, and the summary a list of traces shows."""

from __future__ import annotations

import json
import sys

import pytest
from django.db import DatabaseError, connections, transaction
from django.test import override_settings

import tracer
from tests.testapp.models import Author, Book
from tracer import findings as findings_module
from tracer.findings import KINDS, findings, live_summary, summary

pytestmark = pytest.mark.django_db(databases="__all__")

MS = 1_000_000
HERE = __file__


def lineno() -> int:
    return sys._getframe(1).f_lineno


def n_plus_one_trace(alias: str) -> tracer.Trace:
    ann = Author.objects.using(alias).create(name="Ann")
    bob = Author.objects.using(alias).create(name="Bob")
    Book.objects.using(alias).create(title="A", author=ann)
    Book.objects.using(alias).create(title="B", author=bob)
    with tracer.capture("books") as trace:
        for book in Book.objects.using(alias).order_by("title"):
            assert book.author.name
        with connections[alias].cursor() as cursor:
            for _ in range(2):
                cursor.execute("SELECT 1")  # duplicated
    return trace


def test_every_kind_is_listed_and_json_safe(alias):
    trace = n_plus_one_trace(alias)

    found = findings(trace)

    assert list(found) == [*KINDS, "failed"]
    assert found["failed"] == []
    assert json.loads(json.dumps(found)) == found
    [n_plus_one] = found["n_plus_ones"]
    assert (n_plus_one["kind"], n_plus_one["relation"], n_plus_one["queries"]) == (
        "forward",
        "Book.author",
        2,
    )
    assert n_plus_one["statements"] == [1, 2]
    assert n_plus_one["fix"] == ".select_related('author')"
    [duplicate] = found["duplicates"]
    assert (duplicate["shape"], duplicate["count"], duplicate["indexes"]) == (
        "SELECT ?",
        2,
        [3, 4],
    )
    location = f"{HERE}:{duplicate_line(HERE)}"
    assert duplicate["locations"] == [{"location": location, "count": 2}]
    assert found["slow"] == []


def duplicate_line(path: str) -> int:
    with open(path) as source:
        for number, line in enumerate(source, 1):
            if line.endswith("# duplicated\n"):
                return number
    raise AssertionError("no such line")


def test_slow_statements_are_found():
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            line = lineno() + 1
            cursor.execute("SELECT 2")
    trace.statements[1].duration_ns = 150 * MS

    assert findings(trace)["slow"] == [
        {"index": 1, "duration_ms": 150.0, "location": f"{HERE}:{line}"}
    ]


def test_an_analysis_that_fails_is_named_and_the_others_still_run(monkeypatch):
    def broken(trace: tracer.Trace) -> list[dict[str, object]]:
        raise RuntimeError("bug")

    analyses = dict(findings_module._ANALYSES)
    analyses["duplicates"] = broken
    monkeypatch.setattr(findings_module, "_ANALYSES", tuple(analyses.items()))
    trace = n_plus_one_trace("default")

    found = findings(trace)

    assert found["failed"] == ["duplicates"]
    assert found["duplicates"] == []
    assert len(found["n_plus_ones"]) == 1


def test_the_export_carries_them_and_a_loaded_trace_keeps_them():
    trace = n_plus_one_trace("default")
    data = trace.to_dict()

    loaded = tracer.Trace.from_dict(json.loads(json.dumps(data)))

    assert data["findings"] == findings(trace)
    assert loaded.to_dict()["findings"] == data["findings"]
    assert loaded.imported is True and trace.imported is False


def test_a_finished_trace_is_exported_once():
    trace = n_plus_one_trace("default")

    assert trace.to_dict() is trace.to_dict()


def test_a_running_trace_is_exported_afresh():
    with tracer.capture() as trace:
        Author.objects.count()
        first = trace.to_dict()
        Author.objects.count()
        second = trace.to_dict()

    assert (len(first["statements"]), len(second["statements"])) == (1, 2)


def test_summary_of_a_request():
    trace = n_plus_one_trace("default")
    trace.request = {"method": "GET", "path": "/books/", "status": 200, "view": None}
    statements = trace.statements
    for statement in statements:
        statement.duration_ns, statement.fetch_ns = 2 * MS, 1 * MS
    data = trace.to_dict()
    stages = [s["stages"] for s in data["statements"]]
    build = sum(
        stages[i]["queryset"]["build_ms"] for i in (0, 1) if stages[i]["queryset"] is not None
    )
    python = sum(
        (s["compiler"]["compile_ms"] if s["compiler"] else 0)
        + (s["backend"]["convert_ms"] or 0)
        + (s["backend"]["hydrate_ms"] or 0)
        for s in stages
    )

    result = summary(data)

    assert result == {
        "id": trace.id,
        "label": "books",
        "started_at": trace.started_at,
        "method": "GET",
        "path": "/books/",
        "status": 200,
        "statements": 5,
        "duration_ms": data["duration_ms"],
        "db_ms": 15.0,
        "orm_ms": pytest.approx(build + python, abs=1e-6),
        "n_plus_ones": 1,
        "duplicates": 1,
        "slow": 0,
        "dropped": 0,
    }


def test_summary_outside_a_request_and_of_old_exports():
    data = {"id": "x", "label": "script", "started_at": 1.5, "statements": []}

    assert summary(data) == {
        "id": "x",
        "label": "script",
        "started_at": 1.5,
        "method": None,
        "path": None,
        "status": None,
        "statements": 0,
        "duration_ms": None,
        "db_ms": None,
        "orm_ms": 0.0,
        "n_plus_ones": 0,
        "duplicates": 0,
        "slow": 0,
        "dropped": 0,
    }


def various_traces(alias: str) -> list[tracer.Trace]:
    traces = [n_plus_one_trace(alias)]
    with tracer.capture("mixed") as trace:
        Book.objects.using(alias).bulk_create(
            [Book(title=f"T{i}", author=Author.objects.using(alias).first()) for i in range(3)]
        )
        list(Author.objects.using(alias).prefetch_related("books").order_by("name"))
        list(Author.objects.using(alias).raw("SELECT * FROM testapp_author"))
        Book.objects.using(alias).filter(title="A").update(title="Z")
        Author.objects.using(alias).values_list("name", flat=True).count()
        try:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")
        except DatabaseError:
            pass
    traces.append(trace)
    with override_settings(TRACER={"SOFT_CAP": 2, "HARD_CAP": 3}):
        with tracer.capture("capped") as capped:
            for _ in range(5):
                Author.objects.using(alias).count()
    traces.append(capped)
    return traces


def test_a_live_summary_equals_the_summary_of_the_export(alias):
    for trace in various_traces(alias):
        trace.request = {"method": "POST", "path": "/x/", "status": 302, "view": None}
        live = live_summary(trace)

        assert live == summary(trace.to_dict()), trace.label
    # The third statement lost its params and stack; the last two were only counted.
    assert trace.dropped == {"params": 1, "stacks": 1, "statements": 2}
    assert live["dropped"] == 4
