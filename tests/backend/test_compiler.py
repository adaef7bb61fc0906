"""Traced compilers: the engine's own compiler classes, with recording mixed in."""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal
from importlib import import_module

import pytest
from django.db import DatabaseError, connections, transaction

import tracer
from demo_app.models import Author, Book, Publisher
from tracer import recorder
from tracer.backend.compiler import TracedCompilerMixin, traced_compiler_class

pytestmark = pytest.mark.django_db(databases="__all__")

NAMES = (
    "SQLCompiler",
    "SQLInsertCompiler",
    "SQLDeleteCompiler",
    "SQLUpdateCompiler",
    "SQLAggregateCompiler",
)


def engine_compiler(connection, name: str) -> type:  # type: ignore[no-untyped-def]
    """The engine's own compiler class: what an untraced connection hands out."""
    return getattr(import_module(connection.ops.compiler_module), name)


def make_book(alias: str) -> Book:
    author = Author.objects.using(alias).create(name="Ann")
    publisher = Publisher.objects.using(alias).create(name="Pub")
    return Book.objects.using(alias).create(
        title="One",
        author=author,
        publisher=publisher,
        price=Decimal("5.00"),
        published=datetime.date(2020, 1, 1),
    )


@pytest.mark.parametrize("name", NAMES)
def test_traced_compiler_subclasses_the_engines(connection, name):
    engine = engine_compiler(connection, name)
    with tracer.capture():
        traced = connection.ops.compiler(name)
    assert traced is not engine
    assert issubclass(traced, engine)
    assert traced.__mro__[1:3] == (TracedCompilerMixin, engine)
    assert traced.__name__ == engine.__name__ == name
    assert traced.__qualname__ == engine.__qualname__
    assert traced._tracer_real is engine


@pytest.mark.parametrize("name", NAMES)
def test_traced_compiler_class_is_built_once(connection, name):
    with tracer.capture():
        traced = connection.ops.compiler(name)
        assert connection.ops.compiler(name) is traced
        assert traced_compiler_class(engine_compiler(connection, name)) is traced
        # Another thread gets its own connection object, and the same class.
        seen = []

        def other_thread() -> None:
            other = connections[connection.alias]
            seen.append((other is connection, other.ops.compiler(name)))
            other.close()

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen == [(False, traced)]


@pytest.mark.parametrize("name", NAMES)
def test_idle_connection_hands_out_the_engines_compiler(connection, name):
    engine = engine_compiler(connection, name)
    assert recorder.active_trace() is None  # reads the configuration: CAPTURE is not "always"
    assert recorder.tracing == 0
    assert connection.ops.compiler(name) is engine
    assert connection.ops.compiler(name) is engine
    with tracer.capture():
        assert recorder.tracing == 1
        assert connection.ops.compiler(name) is traced_compiler_class(engine)
        with recorder.suspended():
            assert recorder.tracing == 2
    assert recorder.tracing == 0
    assert connection.ops.compiler(name) is engine


@pytest.mark.parametrize("name", NAMES)
def test_plain_connection_compilers_are_untouched(plain_connection, name):
    engine = engine_compiler(plain_connection, name)
    assert plain_connection.ops.compiler(name) is engine
    assert not issubclass(engine, TracedCompilerMixin)


def test_get_compiler_gives_traced_instances(alias, plain_alias):
    query = Book.objects.filter(price__lt=10).query
    with tracer.capture():
        compiler = query.get_compiler(alias)
    engine = engine_compiler(connections[alias], "SQLCompiler")
    assert isinstance(compiler, engine)
    assert isinstance(compiler, TracedCompilerMixin)
    assert type(query.get_compiler(plain_alias)) is engine
    # Idle, the traced connection's are the engine's own.
    assert recorder.active_trace() is None
    assert type(query.get_compiler(alias)) is engine


def test_as_sql_same_as_plain(alias, plain_alias):
    queryset = Book.objects.filter(price__lt=10).select_related("author").order_by("-title")[:3]
    traced = queryset.query.get_compiler(alias).as_sql()
    plain = queryset.query.get_compiler(plain_alias).as_sql()
    assert traced == plain
    with tracer.capture() as trace:
        assert queryset.query.get_compiler(alias).as_sql() == plain
    # Compiling is not running: nothing recorded.
    assert trace.statements == []
    assert trace.operations == []


def test_str_query_outside_capture_is_unaffected():
    queryset = Book.objects.filter(price__lt=10).order_by("title")
    expected = (
        'SELECT "demo_app_book"."id", "demo_app_book"."title", "demo_app_book"."author_id", '
        '"demo_app_book"."publisher_id", "demo_app_book"."price", "demo_app_book"."published" '
        'FROM "demo_app_book" WHERE "demo_app_book"."price" < 10 '
        'ORDER BY "demo_app_book"."title" ASC'
    )
    assert str(queryset.query) == expected
    with tracer.capture() as trace:
        assert str(queryset.query) == expected
    assert trace.statements == []


def test_compile_is_recorded_per_execute_sql(alias, vendor):
    make_book(alias)
    with tracer.capture() as trace:
        titles = list(Book.objects.using(alias).filter(price__lt=10).values_list("title"))

    assert titles == [("One",)]
    [statement] = trace.statements
    compiler = statement.stages["compiler"]
    engine = engine_compiler(connections[alias], "SQLCompiler")
    assert compiler["class"] == f"{engine.__module__}.{engine.__qualname__}"
    assert compiler["sql"] == statement.sql
    assert compiler["params"] == [{"type": "decimal.Decimal", "repr": "Decimal('10')"}]
    assert compiler["result_type"] == "multi"
    assert isinstance(compiler["compile_ms"], float) and compiler["compile_ms"] >= 0
    assert statement.compile is not None
    assert statement.compile.statement is statement
    assert statement.compile.compiler_class is engine


def test_count_is_a_single_result(alias):
    make_book(alias)
    with tracer.capture() as trace:
        assert Book.objects.using(alias).count() == 1

    assert trace.statements[0].stages["compiler"]["result_type"] == "single"


def test_insert_compiler_sql_is_a_list(alias, vendor):
    with tracer.capture() as trace:
        Author.objects.using(alias).create(name="Ann")

    [statement] = trace.statements
    compiler = statement.stages["compiler"]
    assert compiler["sql"] == [statement.sql]
    assert compiler["params"] == [["Ann"]]
    assert compiler["result_type"] is None  # SQLInsertCompiler.execute_sql() has none
    assert statement.stages["query"]["class"] == "InsertQuery"


def test_converters_are_timed(alias, vendor):
    make_book(alias)
    with tracer.capture() as trace:
        list(Book.objects.using(alias).all())
    backend = trace.statements[0].stages["backend"]
    if vendor == "sqlite":
        # SQLite converts DecimalField and DateField values; the others' drivers
        # return Decimal and date themselves: no converters, no time.
        assert isinstance(backend["convert_ms"], float) and backend["convert_ms"] >= 0
    else:
        assert backend["convert_ms"] is None


def test_failing_sql_raises_as_plain_and_is_recorded(alias, plain_alias):
    def run(using: str) -> type[BaseException]:
        with pytest.raises(DatabaseError) as info:
            with transaction.atomic(using=using):
                list(Book.objects.using(using).extra(where=["no_such_column = 1"]))
        return info.type

    plain_error = run(plain_alias)
    with tracer.capture() as trace:
        traced_error = run(alias)

    assert traced_error is plain_error
    [failed] = [s for s in trace.statements if s.compile is not None]
    error = failed.stages["backend"]["error"]
    assert error["type"] == f"{plain_error.__module__}.{plain_error.__qualname__}"
    assert "no_such_column" in error["message"]
    assert failed.operation.error[0] == error["type"]
    assert failed.stages["compiler"]["sql"] == failed.sql
