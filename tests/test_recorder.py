"""Scoping: each thread and task records into its own trace."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, models
from django.test import override_settings
from django.test.utils import isolate_apps

import tracer
from tests.testapp.models import Author
from tracer import recorder
from tracer.store import get_store

pytestmark = pytest.mark.django_db(databases="__all__")


def select(alias: str, value: int) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT %s", [value])
        cursor.fetchall()


def test_capture_returns_finished_trace():
    with tracer.capture("block") as trace:
        assert tracer.current_trace() is trace
        assert not trace.finished
        select("default", 1)
    assert tracer.current_trace() is None
    assert trace.finished
    assert trace.label == "block"
    assert [s.params for s in trace.statements] == [[1]]
    assert 0 < trace.db_ns <= trace.duration_ns


def test_statements_in_order_across_aliases(alias):
    with tracer.capture() as trace:
        select("default", 1)
        select(alias, 2)
        select("default", 3)
    assert [(s.alias, s.params) for s in trace.statements] == [
        ("default", [1]),
        (alias, [2]),
        ("default", [3]),
    ]


def test_plain_alias_is_not_recorded(plain_alias):
    with tracer.capture() as trace:
        select(plain_alias, 1)
    assert trace.statements == []


def test_nested_captures():
    with tracer.capture("outer") as outer:
        select("default", 1)
        with tracer.capture("inner") as inner:
            select("default", 2)
        select("default", 3)
    assert [s.params for s in inner.statements] == [[2]]
    assert [s.params for s in outer.statements] == [[1], [2], [3]]


def test_threads_never_see_each_others_statements():
    errors: list[BaseException] = []
    traces: dict[int, tracer.Trace] = {}
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        try:
            with tracer.capture(f"thread {n}") as trace:
                barrier.wait()
                for i in range(50):
                    select("default", n * 1000 + i)
            traces[n] = trace
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    with tracer.capture() as main:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert main.statements == []
    for n, trace in traces.items():
        executes = [s for s in trace.statements if s.kind == "execute"]
        assert [s.params for s in executes] == [[n * 1000 + i] for i in range(50)]


def test_asyncio_tasks_have_their_own_traces():
    async def task(n: int) -> tracer.Trace:
        with tracer.capture(f"task {n}") as trace:
            for i in range(5):
                await sync_to_async(select)("default", n * 100 + i)
                await asyncio.sleep(0)
        return trace

    async def main() -> list[tracer.Trace]:
        return await asyncio.gather(*(task(n) for n in range(5)))

    traces = asyncio.run(main())
    for n, trace in enumerate(traces):
        assert [s.params for s in trace.statements] == [[n * 100 + i] for i in range(5)]


def test_async_orm_calls_recorded_in_calling_task():
    async def main() -> tuple[tracer.Trace, int]:
        with tracer.capture() as trace:
            count = await Author.objects.acount()
        return trace, count

    trace, count = asyncio.run(main())
    assert count == 0
    (statement,) = trace.statements
    assert "COUNT(*)" in statement.sql


@override_settings(
    TRACER={"CAPTURE": "always", "ALWAYS_TRACE_STATEMENTS": 3, "ALWAYS_TRACES_KEPT": 2}
)
def test_always_records_outside_capture_in_bounded_rolling_traces():
    for i in range(8):
        select("default", i)
    kept = tracer.always_traces()
    assert len(kept) == 2
    assert [[s.params for s in t.statements] for t in kept] == [[[3], [4], [5]], [[6], [7]]]
    assert kept[0].finished and not kept[1].finished
    assert all(t.label == "always" for t in kept)


@override_settings(TRACER={"CAPTURE": "always"})
def test_always_leaves_explicit_captures_alone():
    with tracer.capture() as trace:
        select("default", 1)
    assert [s.params for s in trace.statements] == [[1]]
    assert all([1] not in [s.params for s in t.statements] for t in tracer.always_traces())


def test_explicit_mode_records_nothing_outside_capture():
    before = sum(len(t.statements) for t in tracer.always_traces())
    select("default", 1)
    assert recorder.active_trace() is None
    assert sum(len(t.statements) for t in tracer.always_traces()) == before


@override_settings(TRACER={"CAPTURE": "sometimes"})
def test_invalid_setting_never_breaks_queries(caplog):
    select("default", 1)  # runs; the system check reports the setting
    assert recorder.active_trace() is None


def test_suspended_keeps_statements_out_of_the_capture(alias):
    with tracer.capture() as trace:
        select(alias, 1)
        with recorder.suspended():
            select(alias, 2)
            with tracer.capture() as inner:  # nested: merged into nothing kept
                select(alias, 3)
            list(Author.objects.using(alias).all())
        select(alias, 4)
    assert [s.params for s in trace.statements] == [[1], [4]]
    assert trace.operations == []
    assert [s.params for s in inner.statements] == [[3]]
    assert get_store().get(inner.id) is None


@override_settings(TRACER={"CAPTURE": "always"})
def test_suspended_keeps_statements_out_of_always_traces():
    select("default", 1)
    ambient = recorder.active_trace()
    assert ambient is not None
    count = len(ambient.statements)
    with recorder.suspended():
        select("default", 2)
        Author.objects.count()
    select("default", 3)
    assert recorder.active_trace() is ambient
    assert [s.params for s in ambient.statements[count:]] == [[3]]


def test_suspended_detaches_from_the_running_operation():
    Author.objects.create(name="Ann")
    seen = []

    with isolate_apps("tests.testapp"):

        class Probe(models.Model):
            name = models.CharField(max_length=100)

            class Meta:
                app_label = "testapp"
                db_table = "testapp_author"
                managed = False

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                # Runs while the QuerySet's operation builds its instances.
                with recorder.suspended():
                    select("default", 9)
                    seen.append(recorder.current_trace())

    with tracer.capture() as trace:
        list(Probe.objects.all())
    [statement] = trace.statements
    [operation] = trace.operations
    assert statement.operation is operation and operation.index == 0
    [suspended] = seen
    assert suspended is not trace and suspended.label == "suspended"
    [inside] = suspended.statements
    assert (inside.params, inside.operation) == ([9], None)


def test_a_settings_change_starts_a_new_rolling_trace():
    with override_settings(TRACER={"CAPTURE": "always", "ALWAYS_TRACE_STATEMENTS": 3}):
        select("default", 1)
        before = tracer.always_traces()[-1]
    with override_settings(TRACER={"CAPTURE": "always", "ALWAYS_TRACE_STATEMENTS": 3}):
        select("default", 2)
        after = tracer.always_traces()[-1]
    assert after is not before
    assert [s.params for s in after.statements] == [[2]]
    assert [s.params for s in before.statements][-1] == [1]
