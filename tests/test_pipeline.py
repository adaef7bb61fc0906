"""The Model -> Manager -> QuerySet stages: lineage, operations, triggers, hydration.

Every ORM call here is recorded inside ``tracer.capture()`` and checked through the
public views of a trace: ``statement.stages``, ``trace.operations`` and
``trace.to_dict()``.
"""

from __future__ import annotations

import copy
import datetime
import pickle
import sys
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from django.db.models import F, QuerySet, Sum
from django.template import engines, loader
from django.test import override_settings

import tracer
import tracer.querystate
from demo_app.models import Author, Book, Publisher, Tag
from tracer import recorder, stacks
from tracer.pipeline import LINEAGE

pytestmark = pytest.mark.django_db(databases="__all__")

HERE = __file__

#: The engine's compiler class of each kind, as the compiler stage names it.
COMPILERS = {
    "sqlite": {
        "SQLCompiler": "django.db.models.sql.compiler.SQLCompiler",
        "SQLInsertCompiler": "django.db.models.sql.compiler.SQLInsertCompiler",
        "SQLUpdateCompiler": "django.db.models.sql.compiler.SQLUpdateCompiler",
        "SQLDeleteCompiler": "django.db.models.sql.compiler.SQLDeleteCompiler",
    },
    "postgresql": {
        "SQLCompiler": "django.db.backends.postgresql.compiler.SQLCompiler",
        "SQLInsertCompiler": "django.db.backends.postgresql.compiler.SQLInsertCompiler",
        "SQLUpdateCompiler": "django.db.models.sql.compiler.SQLUpdateCompiler",
        "SQLDeleteCompiler": "django.db.models.sql.compiler.SQLDeleteCompiler",
    },
    "mysql": {
        "SQLCompiler": "django.db.models.sql.compiler.SQLCompiler",
        "SQLInsertCompiler": "django.db.models.sql.compiler.SQLInsertCompiler",
        "SQLUpdateCompiler": "django.db.backends.mysql.compiler.SQLUpdateCompiler",
        "SQLDeleteCompiler": "django.db.backends.mysql.compiler.SQLDeleteCompiler",
    },
}

MANAGER = {"name": "objects", "class": "django.db.models.manager.Manager", "related": None}
BOOK = {"label": "demo_app.Book", "table": "demo_app_book"}
REVERSE_FK_MANAGER = (
    "django.db.models.fields.related_descriptors."
    "create_reverse_many_to_one_manager.<locals>.RelatedManager"
)
M2M_MANAGER = (
    "django.db.models.fields.related_descriptors."
    "create_forward_many_to_many_manager.<locals>.ManyRelatedManager"
)


def lineno() -> int:
    """The caller's current line."""
    return sys._getframe(1).f_lineno


def location(line: int, function: str, source: str) -> dict[str, Any]:
    return {"file": HERE, "line": line, "function": function, "source": source}


def library(alias: str = "default") -> dict[str, Any]:
    """Two authors, one publisher, three books (two cheap ones by the first author)."""
    ann = Author.objects.using(alias).create(name="Ann")
    bob = Author.objects.using(alias).create(name="Bob")
    pub = Publisher.objects.using(alias).create(name="Pub")
    books = [
        Book.objects.using(alias).create(
            title=title,
            author=author,
            publisher=pub,
            price=Decimal(price),
            published=datetime.date(2020, month, 1),
        )
        for title, author, price, month in (
            ("One", ann, "5.00", 1),
            ("Two", ann, "8.00", 2),
            ("Three", bob, "20.00", 3),
        )
    ]
    tag = Tag.objects.using(alias).create(name="classic")
    books[0].tags.add(tag)
    return {"ann": ann, "bob": bob, "pub": pub, "books": books, "tag": tag}


def only_operation(trace: tracer.Trace) -> Any:
    """The trace's single operation, which every statement belongs to."""
    assert len(trace.operations) == 1
    operation = trace.operations[0]
    assert [s.operation for s in trace.statements] == [operation] * len(trace.statements)
    return operation


def first_words(trace: tracer.Trace) -> list[str]:
    words = []
    for statement in trace.statements:
        sql = statement.sql.split()
        words.append(" ".join(sql[:2]) if sql[0] == "RELEASE" else sql[0])
    return words


# Lineage -------------------------------------------------------------------------------


def test_lineage_code_calls_and_trigger():
    library()
    with tracer.capture() as trace:
        line = lineno() + 1
        list(Book.objects.filter(price__lt=10).select_related("author").order_by("-published")[:5])

    [statement] = trace.statements
    assert statement.rows_fetched == 2
    stages = statement.stages
    source = (
        'list(Book.objects.filter(price__lt=10).select_related("author")'
        '.order_by("-published")[:5])'
    )
    where = location(line, "test_lineage_code_calls_and_trigger", source)
    queryset = stages["queryset"]
    assert queryset["code"] == (
        "Book.objects.filter(price__lt=10).select_related('author').order_by('-published')[:5]"
    )
    assert queryset["class"] == "django.db.models.query.QuerySet"
    assert [call["code"] for call in queryset["calls"]] == [
        ".filter(price__lt=10)",
        ".select_related('author')",
        ".order_by('-published')",
        "[:5]",
    ]
    assert [call["location"] for call in queryset["calls"]] == [where] * 4
    for call in queryset["calls"]:
        assert isinstance(call["duration_ms"], float) and call["duration_ms"] >= 0
    assert isinstance(queryset["build_ms"], float) and queryset["build_ms"] >= 0
    assert queryset["trigger"] == "iteration"
    assert queryset["trigger_location"] == where
    assert queryset["prefetch_lookups"] == []
    assert stages["model"] == BOOK
    assert stages["manager"] == MANAGER
    assert stages["query"]["class"] == "Query"
    assert stages["query"]["state"]["order_by"] == ["-published"]
    assert stages["query"]["state"]["high_mark"] == 5
    assert stages["compiler"]["class"] == COMPILERS["sqlite"]["SQLCompiler"]
    assert stages["compiler"]["result_type"] == "multi"
    operation = only_operation(trace)
    assert operation.trigger == "iteration"
    assert operation.detail is None
    assert operation.parent is None
    assert operation.model is Book
    assert trace.to_dict()["operations"][0]["location"] == where
    assert trace.to_dict()["statements"][0]["location"] == where


def test_lineage_calls_on_separate_lines():
    library()
    with tracer.capture() as trace:
        first = lineno() + 3
        # fmt: off
        queryset = (
            Book.objects.filter(price__lt=10)
            .select_related("author")
            .order_by("-published")
        )
        # fmt: on
        evaluated = lineno() + 1
        list(queryset)

    queryset_stage = trace.statements[0].stages["queryset"]
    function = "test_lineage_calls_on_separate_lines"
    assert [(call["code"], call["location"]) for call in queryset_stage["calls"]] == [
        (".filter(price__lt=10)", location(first, function, "Book.objects.filter(price__lt=10)")),
        (".select_related('author')", location(first + 1, function, '.select_related("author")')),
        (".order_by('-published')", location(first + 2, function, '.order_by("-published")')),
    ]
    assert queryset_stage["trigger_location"] == location(evaluated, function, "list(queryset)")


def test_lineage_per_engine(alias, vendor):
    library(alias)
    with tracer.capture() as trace:
        list(Book.objects.using(alias).filter(price__lt=10).select_related("author")[:5])

    stages = trace.statements[0].stages
    assert stages["queryset"]["code"] == (
        f"Book.objects.using({alias!r}).filter(price__lt=10).select_related('author')[:5]"
    )
    assert stages["manager"] == MANAGER
    assert stages["model"] == BOOK
    assert stages["compiler"]["class"] == COMPILERS[vendor]["SQLCompiler"]
    assert stages["backend"]["alias"] == alias
    assert stages["backend"]["vendor"] == vendor


def test_get_appends_the_triggering_call():
    data = library()
    pk = data["books"][0].pk
    with tracer.capture() as trace:
        line = lineno() + 1
        book = Book.objects.filter(price__lt=10).get(pk=pk)

    assert book.title == "One"
    operation = only_operation(trace)
    assert operation.trigger == "get"
    queryset = trace.statements[0].stages["queryset"]
    assert queryset["code"] == f"Book.objects.filter(price__lt=10).get(pk={pk})"
    assert [call["code"] for call in queryset["calls"]] == [".filter(price__lt=10)"]
    assert queryset["trigger"] == "get"
    assert queryset["trigger_location"] == location(
        line,
        "test_get_appends_the_triggering_call",
        "book = Book.objects.filter(price__lt=10).get(pk=pk)",
    )


@pytest.mark.parametrize(
    ("run", "code"),
    [
        (lambda: Book.objects.filter(price__lt=10).count(), "count()"),
        (lambda: Book.objects.filter(price__lt=10).exists(), "exists()"),
        (lambda: Book.objects.filter(price__lt=10).first(), "first()"),
        (lambda: Book.objects.filter(price__lt=10, title="One").get(), "get()"),
    ],
    ids=["count", "exists", "first", "get"],
)
def test_explicit_trigger_without_arguments_is_part_of_the_code(run, code):
    # The trace.py docs leave the triggering call out only for implicit triggers like
    # iteration: .count() is explicit even without arguments (as .get(pk=1) shows its
    # own), and .get() must not read like a plain iteration of the QuerySet.
    library()
    with tracer.capture() as trace:
        run()

    condition = "price__lt=10, title='One'" if code == "get()" else "price__lt=10"
    assert trace.statements[0].stages["queryset"]["code"] == (
        f"Book.objects.filter({condition}).{code}"
    )


def test_index_trigger():
    library()
    with tracer.capture() as trace:
        assert Book.objects.order_by("title")[1].title == "Three"

    assert only_operation(trace).trigger == "index"
    queryset = trace.statements[0].stages["queryset"]
    assert queryset["code"] == "Book.objects.order_by('title')[1]"
    assert queryset["trigger"] == "index"


def test_one_string_arguments_are_shared_within_a_trace():
    # A loop's .order_by("title") keeps one ("title",) tuple, not one per call.
    library()
    with tracer.capture() as trace:
        for _ in range(2):
            list(Book.objects.order_by("title"))
        list(Book.objects.order_by("price"))
        list(Book.objects.order_by("title", "price"))

    first, second, third, fourth = (operation.lineage for operation in trace.operations)
    assert [c.args for c in (first, second, third, fourth)] == [
        ("title",),
        ("title",),
        ("price",),
        ("title", "price"),
    ]
    assert first.args is second.args
    assert first.args is not third.args
    assert trace._args == {}  # let go of when the trace finished


def test_queryset_built_outside_capture_has_no_lineage():
    library()
    queryset = Book.objects.filter(price__lt=10)
    assert LINEAGE not in queryset.__dict__
    with tracer.capture() as trace:
        list(queryset)

    stages = trace.statements[0].stages
    assert stages["manager"] is None
    assert stages["queryset"]["code"] == "QuerySet(Book)"
    assert stages["queryset"]["calls"] == []
    assert stages["queryset"]["trigger"] == "iteration"


# Operations: one per ORM call, with all of its statements ------------------------------


def test_count_exists_first_aggregate(alias, vendor):
    library(alias)

    def books() -> Any:
        return Book.objects.using(alias)

    for run, trigger, result in (
        (lambda: books().filter(price__lt=10).count(), "count", 2),
        (lambda: books().filter(price__lt=10).exists(), "exists", True),
        (lambda: books().order_by("title").first().title, "first", "One"),
        (lambda: books().aggregate(total=Sum("price")), "aggregate", {"total": Decimal("33.00")}),
    ):
        with tracer.capture() as trace:
            assert run() == result
        operation = only_operation(trace)
        assert len(trace.statements) == 1
        assert operation.trigger == trigger
        assert operation.model is Book
        stages = trace.statements[0].stages
        assert stages["model"] == BOOK
        assert stages["manager"] == MANAGER
        assert stages["query"]["class"] == "Query"
        assert stages["compiler"]["class"] == COMPILERS[vendor]["SQLCompiler"]
        if trigger == "aggregate":
            assert stages["queryset"]["code"] == (
                f"Book.objects.using({alias!r}).aggregate(total=Sum(F(price)))"
            )


def test_update(alias, vendor):
    data = library(alias)
    pk = data["books"][0].pk
    with tracer.capture() as trace:
        assert Book.objects.using(alias).filter(pk=pk).update(title="New") == 1

    operation = only_operation(trace)
    assert operation.trigger == "update"
    stages = trace.statements[0].stages
    assert stages["queryset"]["code"] == (
        f"Book.objects.using({alias!r}).filter(pk={pk}).update(title='New')"
    )
    assert stages["query"]["class"] == "UpdateQuery"
    assert stages["compiler"]["class"] == COMPILERS[vendor]["SQLUpdateCompiler"]


def test_delete_with_cascade_is_one_operation(alias, vendor):
    data = library(alias)
    with tracer.capture() as trace:
        deleted = Author.objects.using(alias).filter(pk=data["ann"].pk).delete()

    assert deleted[0] == 4  # the author, two books, one book-tag link
    operation = only_operation(trace)
    assert operation.trigger == "delete"
    assert operation.model is Author
    # The author, its books' ids, then the books' tag links, reviews and store links,
    # the books, the author.
    assert first_words(trace) == ["SELECT"] * 2 + ["DELETE"] * 5
    last = trace.statements[-1].stages
    assert last["model"] == {"label": "demo_app.Author", "table": "demo_app_author"}
    assert last["query"]["class"] == "DeleteQuery"
    assert last["compiler"]["class"] == COMPILERS[vendor]["SQLDeleteCompiler"]
    assert last["manager"] == MANAGER
    # The cascade's statements are the ORM's own: no manager, no QuerySet of the user's.
    cascade = trace.statements[-2].stages
    assert cascade["model"] == BOOK
    assert cascade["manager"] is None
    assert cascade["queryset"] is None


def test_bulk_create(alias, vendor):
    with tracer.capture() as trace:
        Tag.objects.using(alias).bulk_create([Tag(name="x"), Tag(name="y")])

    operation = only_operation(trace)
    assert operation.trigger == "bulk_create"
    assert operation.model is Tag
    stages = trace.statements[0].stages
    assert stages["queryset"]["code"] == (
        f"Tag.objects.using({alias!r}).bulk_create([<Tag: x>, <Tag: y>])"
    )
    assert stages["query"]["class"] == "InsertQuery"
    assert stages["compiler"]["class"] == COMPILERS[vendor]["SQLInsertCompiler"]


def test_get_or_create_with_savepoints_is_one_operation(alias, vendor):
    with tracer.capture() as trace:
        tag, created = Tag.objects.using(alias).get_or_create(name="new")

    assert created is True
    operation = only_operation(trace)
    assert operation.trigger == "get_or_create"
    assert first_words(trace) == ["SELECT", "SAVEPOINT", "INSERT", "RELEASE SAVEPOINT"]
    select, savepoint, insert, release = (s.stages for s in trace.statements)
    code = f"Tag.objects.using({alias!r}).get_or_create(name='new')"
    assert select["queryset"]["code"] == code
    assert insert["queryset"]["code"] == code
    assert insert["query"]["class"] == "InsertQuery"
    for stages in (savepoint, release):
        assert [key for key, stage in stages.items() if stage is None] == [
            "model",
            "manager",
            "queryset",
            "query",
            "compiler",
        ]
        assert stages["backend"]["alias"] == alias


def test_save(alias, vendor):
    data = library(alias)
    book = data["books"][0]
    with tracer.capture() as trace:
        book.title = "Renamed"
        book.save()
        Author(name="New").save(using=alias)

    assert [(o.trigger, o.model) for o in trace.operations] == [("save", Book), ("save", Author)]
    update, insert = (s.stages for s in trace.statements)
    assert update["model"] == BOOK
    assert update["manager"] is None
    assert update["queryset"] is None
    assert update["query"]["class"] == "UpdateQuery"
    assert update["compiler"]["class"] == COMPILERS[vendor]["SQLUpdateCompiler"]
    assert insert["model"] == {"label": "demo_app.Author", "table": "demo_app_author"}
    assert insert["manager"] is None
    assert insert["queryset"] is None
    assert insert["query"]["class"] == "InsertQuery"
    assert insert["compiler"]["class"] == COMPILERS[vendor]["SQLInsertCompiler"]
    assert [s.operation for s in trace.statements] == trace.operations


# Related objects -------------------------------------------------------------------------


def test_related_manager(alias):
    data = library(alias)
    ann = data["ann"]
    with tracer.capture() as trace:
        books = list(ann.books.filter(price__lt=10))

    assert len(books) == 2
    operation = only_operation(trace)
    assert operation.trigger == "iteration"
    stages = trace.statements[0].stages
    assert stages["manager"] == {
        "name": "books",
        "class": REVERSE_FK_MANAGER,
        "related": {"instance": "demo_app.Author", "accessor": "books", "pk": ann.pk},
    }
    assert stages["queryset"]["code"] == "author.books.filter(price__lt=10)"
    assert stages["model"] == BOOK


def test_related_manager_all():
    data = library()
    ann = data["ann"]
    with tracer.capture() as trace:
        list(ann.books.all())

    assert trace.statements[0].stages["manager"] == {
        "name": "books",
        "class": REVERSE_FK_MANAGER,
        "related": {"instance": "demo_app.Author", "accessor": "books", "pk": ann.pk},
    }


def test_many_to_many_manager():
    data = library()
    book = data["books"][0]
    with tracer.capture() as trace:
        assert [t.name for t in book.tags.all()] == ["classic"]

    assert trace.statements[0].stages["manager"] == {
        "name": "tags",
        "class": M2M_MANAGER,
        "related": {"instance": "demo_app.Book", "accessor": "tags", "pk": book.pk},
    }


def test_many_to_many_count_queries_the_through_table(alias):
    # ManyRelatedManager.count() and .exists() run on the through model's base
    # manager; the manager stage still names the relation and its instance.
    data = library(alias)
    book = data["books"][0]
    with tracer.capture() as trace:
        assert book.tags.count() == 1
        assert book.tags.exists()

    for statement in trace.statements:
        stages = statement.stages
        assert stages["manager"] == {
            "name": "tags",
            "class": "django.db.models.manager.Manager",
            "related": {"instance": "demo_app.Book", "accessor": "tags", "pk": book.pk},
        }
        assert stages["model"] == {"label": "demo_app.Book_tags", "table": "demo_app_book_tags"}
    assert [s.stages["queryset"]["trigger"] for s in trace.statements] == ["count", "exists"]


def test_lazy_foreign_key_in_a_loop(alias):
    library(alias)
    with tracer.capture() as trace:
        names = []
        for book in Book.objects.using(alias).order_by("title"):
            line = lineno() + 1
            names.append(book.author.name)

    assert names == ["Ann", "Bob", "Ann"]
    evaluation, *related = trace.operations
    assert evaluation.trigger == "iteration"
    assert len(related) == 3
    exported = trace.to_dict()["operations"]
    where = location(line, "test_lazy_foreign_key_in_a_loop", "names.append(book.author.name)")
    for operation in related:
        assert operation.trigger == "related"
        assert operation.detail == "Book.author"
        assert operation.model is Author
        assert operation.parent is None
        assert exported[operation.index]["location"] == where
        assert exported[operation.index]["model"] == "demo_app.Author"
    assert [s.operation for s in trace.statements] == trace.operations
    # The lazy access runs the QuerySet Django builds on the base manager.
    stages = trace.statements[1].stages
    assert stages["model"] == {"label": "demo_app.Author", "table": "demo_app_author"}
    assert stages["manager"] == {**MANAGER, "name": "_base_manager"}
    assert stages["queryset"]["code"] == "Author._base_manager"
    assert stages["queryset"]["trigger"] == "related"
    assert stages["queryset"]["trigger_detail"] == "Book.author"
    assert trace.statements[0].stages["queryset"]["trigger_detail"] is None


def test_prefetch_is_nested_under_the_evaluation(alias):
    library(alias)
    with tracer.capture() as trace:
        line = lineno() + 1
        authors = list(Author.objects.using(alias).order_by("name").prefetch_related("books"))

    assert [len(a.books.all()) for a in authors] == [2, 1]
    evaluation, prefetch = trace.operations
    assert evaluation.trigger == "iteration"
    assert evaluation.parent is None
    assert prefetch.trigger == "prefetch"
    assert prefetch.detail == "books"
    assert prefetch.parent is evaluation
    assert prefetch.model is Book
    assert [s.operation for s in trace.statements] == [evaluation, prefetch]
    first = trace.statements[0].stages["queryset"]
    assert first["prefetch_lookups"] == ["books"]
    assert first["code"] == (
        f"Author.objects.using({alias!r}).order_by('name').prefetch_related('books')"
    )
    exported = trace.to_dict()["operations"]
    assert exported[1]["parent"] == 0
    assert exported[1]["trigger"] == "prefetch"
    assert exported[1]["detail"] == "books"
    where = location(
        line,
        "test_prefetch_is_nested_under_the_evaluation",
        'authors = list(Author.objects.using(alias).order_by("name").prefetch_related("books"))',
    )
    assert exported[0]["location"] == where
    assert exported[1]["location"] == where


# Hydration -------------------------------------------------------------------------------


def test_select_related_hydration(alias):
    library(alias)
    with tracer.capture() as trace:
        books = list(Book.objects.using(alias).select_related("author").order_by("title"))

    assert [b.author.name for b in books] == ["Ann", "Bob", "Ann"]
    assert len(trace.statements) == 1  # the authors came with the books
    backend = trace.statements[0].stages["backend"]
    assert backend["iterable"] == "django.db.models.query.ModelIterable"
    assert isinstance(backend["hydrate_ms"], float) and backend["hydrate_ms"] >= 0
    assert backend["rows_fetched"] == 3
    assert backend["error"] is None


@pytest.mark.parametrize(
    ("make", "iterable", "result"),
    [
        (
            lambda qs: qs.values_list("title", "price"),
            "ValuesListIterable",
            [("One", Decimal("5.00")), ("Three", Decimal("20.00")), ("Two", Decimal("8.00"))],
        ),
        (lambda qs: qs.values_list("title", flat=True), "FlatValuesListIterable", None),
        (lambda qs: qs.values_list("title", named=True), "NamedValuesListIterable", None),
        (lambda qs: qs.values("title"), "ValuesIterable", None),
    ],
    ids=["values_list", "flat", "named", "values"],
)
def test_values_iterables(make, iterable, result):
    library()
    with tracer.capture() as trace:
        rows = list(make(Book.objects.order_by("title")))

    if result is not None:
        assert rows == result
    assert len(rows) == 3
    backend = trace.statements[0].stages["backend"]
    assert backend["iterable"] == f"django.db.models.query.{iterable}"
    assert isinstance(backend["hydrate_ms"], float) and backend["hydrate_ms"] >= 0


def test_iterator_records_statements_and_hydration(alias):
    library(alias)
    with tracer.capture() as trace:
        titles = []
        line = lineno() + 1
        for book in Book.objects.using(alias).order_by("title").iterator(chunk_size=2):
            titles.append(book.title)

    assert titles == ["One", "Three", "Two"]
    [statement] = trace.statements
    backend = statement.stages["backend"]
    assert backend["iterable"] == "django.db.models.query.ModelIterable"
    assert isinstance(backend["hydrate_ms"], float) and backend["hydrate_ms"] >= 0
    assert backend["rows_fetched"] == 3
    assert statement.stages["query"]["class"] == "Query"
    exported = trace.to_dict()["statements"][0]
    assert exported["location"]["line"] == line
    assert exported["location"]["file"] == HERE


def test_iterator_statement_belongs_to_an_iterator_operation():
    # iterator() returns a generator: its SQL runs when the loop pulls rows, after the
    # iterator() call (and an operation covering only that call) returned.
    library()
    with tracer.capture() as trace:
        for _book in Book.objects.filter(price__lt=10).iterator():
            pass

    [statement] = trace.statements
    assert statement.operation is not None
    assert statement.operation.trigger == "iterator"
    assert statement.stages["manager"] == MANAGER
    assert statement.stages["queryset"]["code"] == "Book.objects.filter(price__lt=10).iterator()"


# Raw SQL ---------------------------------------------------------------------------------


def test_raw_cursor_sql(alias, vendor):
    with tracer.capture() as trace:
        with connections[alias].cursor() as cursor:
            line = lineno() + 1
            cursor.execute("SELECT 1")
            assert cursor.fetchall() in ([(1,)], ((1,),))

    [statement] = trace.statements
    assert statement.operation is None
    stages = statement.stages
    assert [key for key, stage in stages.items() if stage is None] == [
        "model",
        "manager",
        "queryset",
        "query",
        "compiler",
    ]
    backend = stages["backend"]
    assert backend["alias"] == alias
    assert backend["vendor"] == vendor
    assert backend["iterable"] is None
    assert backend["hydrate_ms"] is None
    assert backend["convert_ms"] is None
    assert backend["rows_fetched"] == 1
    exported = trace.to_dict()["statements"][0]
    assert exported["operation"] is None
    assert exported["location"] == location(
        line, "test_raw_cursor_sql", 'cursor.execute("SELECT 1")'
    )


def test_raw_queryset(alias):
    library(alias)
    with tracer.capture() as trace:
        books = list(Book.objects.using(alias).raw("SELECT * FROM demo_app_book"))

    assert sorted(b.title for b in books) == ["One", "Three", "Two"]
    operation = only_operation(trace)
    assert operation.trigger == "iteration"
    stages = trace.statements[0].stages
    assert stages["model"] == BOOK
    assert stages["manager"] == MANAGER
    assert stages["queryset"]["class"] == "django.db.models.query.RawQuerySet"
    assert stages["queryset"]["code"] == (
        f"Book.objects.using({alias!r}).raw('SELECT * FROM demo_app_book')"
    )
    assert stages["query"]["class"] == "RawQuery"
    assert stages["compiler"] is None
    state = stages["query"]["state"]
    assert state["class"] == "RawQuery"
    assert state["sql"] == "SELECT * FROM demo_app_book"
    assert state["params"] == 0
    # Like every querystate: all the keys describe() gives a RawQuery.
    from django.db.models.sql.query import RawQuery

    described = tracer.querystate.describe(RawQuery("SELECT * FROM demo_app_book", alias))
    assert sorted(state) == sorted(described)


def test_raw_queryset_with_params():
    library()
    with tracer.capture() as trace:
        sql = "SELECT * FROM demo_app_book WHERE price < %s AND title = %s"
        books = list(Book.objects.raw(sql, [10, "One"]))

    assert [b.title for b in books] == ["One"]
    state = trace.statements[0].stages["query"]["state"]
    assert state["sql"] == "SELECT * FROM demo_app_book WHERE price < %s AND title = %s"
    assert state["params"] == 2
    assert state["model"] is None
    assert state["errors"] == []


def test_empty_result_set_runs_no_statement(alias):
    library(alias)
    with tracer.capture() as trace:
        assert list(Book.objects.using(alias).filter(pk__in=[])) == []

    assert trace.statements == []
    assert trace.operations == []


# Templates -------------------------------------------------------------------------------


def test_len_outside_a_template_for_loop_is_len():
    library()
    with tracer.capture() as trace:
        assert len(Book.objects.all()) == 3
        html = (
            engines["django"]
            .from_string("{{ books|length }}")
            .render({"books": Book.objects.all()})
        )

    assert html == "3"
    assert [o.trigger for o in trace.operations] == ["len", "len"]


def test_template_file_location():
    library()
    with tracer.capture() as trace:
        template = loader.get_template("testapp/n_plus_one.html")
        line = lineno() + 1
        html = template.render({"books": Book.objects.order_by("title")})

    assert html.count("<li>") == 3
    evaluation, *related = trace.operations
    # {% for %} (line 2) loops over the QuerySet: the len() it takes first is named
    # iteration; {{ b.author.name }} is line 3.
    assert evaluation.trigger == "iteration"
    assert evaluation.template == ("testapp/n_plus_one.html", 2)
    assert [(o.trigger, o.detail, o.template) for o in related] == [
        ("related", "Book.author", ("testapp/n_plus_one.html", 3))
    ] * 3
    exported = trace.to_dict()
    assert exported["operations"][1]["template"] == {"name": "testapp/n_plus_one.html", "line": 3}
    assert exported["statements"][1]["template"] == {"name": "testapp/n_plus_one.html", "line": 3}
    # The code location is where the template was rendered from.
    where = location(
        line,
        "test_template_file_location",
        'html = template.render({"books": Book.objects.order_by("title")})',
    )
    assert [o["location"] for o in exported["operations"]] == [where] * 4


def test_template_from_string_location():
    library()
    source = "{% for b in books %}{{ b.author.name }}{% endfor %}"
    with tracer.capture() as trace:
        engines["django"].from_string(source).render({"books": Book.objects.all()})

    assert [o.template for o in trace.operations] == [("<unknown source>", 1)] * 4


# Async -----------------------------------------------------------------------------------


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_async_get_and_count():
    data = library()
    pk = data["books"][0].pk
    lines = {}

    async def run() -> tracer.Trace:
        with tracer.capture() as trace:
            lines["aget"] = lineno() + 1
            book = await Book.objects.aget(pk=pk)
            lines["acount"] = lineno() + 1
            count = await Book.objects.acount()
        assert (book.title, count) == ("One", 3)
        return trace

    trace = async_to_sync(run)()
    assert [o.trigger for o in trace.operations] == ["aget", "acount"]
    assert [s.operation for s in trace.statements] == trace.operations
    exported = trace.to_dict()["operations"]
    function = "test_async_get_and_count.<locals>.run"
    assert exported[0]["location"] == location(
        lines["aget"], function, "book = await Book.objects.aget(pk=pk)"
    )
    assert exported[1]["location"] == location(
        lines["acount"], function, "count = await Book.objects.acount()"
    )
    # The code is the awaited call's, as written.
    assert trace.statements[0].stages["queryset"]["code"] == f"Book.objects.aget(pk={pk})"
    assert trace.statements[0].stages["queryset"]["trigger"] == "aget"


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("how", ["async for", "aiterator"])
def test_async_iteration(how):
    library()
    lines = {}

    async def run() -> tracer.Trace:
        titles = []
        with tracer.capture() as trace:
            if how == "async for":
                lines[how] = lineno() + 1
                async for book in Book.objects.order_by("title")[:3]:
                    titles.append(book.title)
            else:
                lines[how] = lineno() + 1
                async for book in Book.objects.order_by("title").aiterator():
                    titles.append(book.title)
        assert titles == ["One", "Three", "Two"]
        return trace

    trace = async_to_sync(run)()
    [statement] = trace.statements
    exported = trace.to_dict()["statements"][0]
    assert exported["location"]["line"] == lines[how]
    assert exported["location"]["function"] == "test_async_iteration.<locals>.run"
    assert statement.operation is not None
    assert statement.operation.trigger == how
    assert statement.stages["manager"] == MANAGER


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("method", ["asave", "arefresh_from_db", "adelete"])
def test_async_model_methods(method):
    # As their sync twins: an operation on the instance (no QuerySet of the user's),
    # named after the awaited method, located at the await.
    data = library()
    bob = data["bob"]  # the author of one book: adelete() cascades
    lines = {}

    async def run() -> tracer.Trace:
        with tracer.capture() as trace:
            lines[method] = lineno() + 1
            await getattr(bob, method)()
        return trace

    trace = async_to_sync(run)()
    [operation] = [o for o in trace.to_dict()["operations"] if o["parent"] is None]
    assert operation["trigger"] == method
    assert operation["model"] == "demo_app.Author"
    assert operation["queryset"] is None
    assert operation["code"] is None
    assert operation["location"] == location(
        lines[method],
        "test_async_model_methods.<locals>.run",
        "await getattr(bob, method)()",
    )


# Caps --------------------------------------------------------------------------------------


def test_caps_on_raw_sql():
    with override_settings(TRACER={"SOFT_CAP": 2, "HARD_CAP": 4}):
        with tracer.capture() as trace:
            with connections["default"].cursor() as cursor:
                for number in range(6):
                    cursor.execute("SELECT %s", [number])

    assert [s.params for s in trace.statements] == [[0], [1], recorder.DROPPED, recorder.DROPPED]
    assert [s.stack is not None for s in trace.statements] == [True, True, False, False]
    assert trace.dropped == {"params": 2, "stacks": 2, "statements": 2}
    exported = trace.to_dict()
    assert exported["dropped"] == {"params": 2, "stacks": 2, "statements": 2}
    assert [s["params"] for s in exported["statements"]] == [
        [0],
        [1],
        recorder.DROPPED,
        recorder.DROPPED,
    ]
    assert [s["location"] is None for s in exported["statements"]] == [False, False, True, True]


def test_caps_on_orm_queries():
    # The same six statements made by the ORM: two lost their params and stacks, two
    # were not recorded. "stacks" should count the statements that lost one, as for
    # raw SQL, not also the operations of statements past HARD_CAP.
    library()
    with override_settings(TRACER={"SOFT_CAP": 2, "HARD_CAP": 4}):
        with tracer.capture() as trace:
            for number in range(6):
                Book.objects.filter(pk=number).first()

    assert len(trace.statements) == 4
    assert [s.params for s in trace.statements][2:] == [recorder.DROPPED, recorder.DROPPED]
    assert [s.operation.stack is not None for s in trace.statements] == [
        True,
        True,
        False,
        False,
    ]
    assert trace.dropped == {"params": 2, "stacks": 2, "statements": 2}


# Copies, no capture, failures --------------------------------------------------------------


def test_pickle_and_deepcopy_of_a_traced_queryset():
    library()
    with tracer.capture() as trace:
        queryset = Book.objects.filter(price__lt=10).order_by("title")
        titles = [b.title for b in queryset]
        unpickled = pickle.loads(pickle.dumps(queryset))
        copied = copy.deepcopy(queryset)
        # The copies are usable inside the capture.
        assert [b.title for b in unpickled.filter(title="One")] == ["One"]
        assert [b.title for b in copied] == ["One", "Two"]

    assert titles == ["One", "Two"]
    assert [b.title for b in unpickled] == titles  # from its pickled result cache
    assert unpickled.__dict__.get(LINEAGE) is None
    assert queryset.__dict__[LINEAGE] is not None
    assert len(trace.statements) == 3
    # The unpickled QuerySet has no lineage: its filter() starts a new one.
    assert trace.statements[1].stages["queryset"]["code"] == "QuerySet(Book).filter(title='One')"
    assert trace.statements[1].stages["manager"] is None
    # A deep copy is the same QuerySet: it keeps the lineage.
    assert copied.__dict__[LINEAGE] is queryset.__dict__[LINEAGE]
    assert trace.statements[2].stages["queryset"]["code"] == (
        "Book.objects.filter(price__lt=10).order_by('title')"
    )


def test_nothing_recorded_outside_capture():
    library()
    queryset = Book.objects.filter(price__lt=10).select_related("author")
    assert LINEAGE not in queryset.__dict__
    assert len(list(queryset)) == 2
    assert Book.objects.count() == 3
    assert recorder.active_trace() is None
    with tracer.capture() as trace:
        pass
    assert trace.statements == []
    assert trace.operations == []


def test_describe_failure_never_breaks_the_query(monkeypatch):
    library()
    expected = list(
        Book.objects.annotate(describe_failure_probe=F("price"))
        .filter(price__lt=9)
        .order_by("title")
        .values_list("title", "describe_failure_probe")
    )

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken describe")

    monkeypatch.setattr(tracer.querystate, "describe", broken)
    before = recorder.failures()
    with tracer.capture() as trace:
        # SQL that no other test compiles (described states are cached per SQL text):
        # the annotation's alias is in the SELECT clause.
        result = list(
            Book.objects.annotate(describe_failure_probe=F("price"))
            .filter(price__lt=9)
            .order_by("title")
            .values_list("title", "describe_failure_probe")
        )

    assert result == expected == [("One", Decimal("5.00")), ("Two", Decimal("8.00"))]
    assert recorder.failures() == before + 1
    stages = trace.statements[0].stages
    assert stages["query"] == {"class": "Query", "state": None}
    assert stages["queryset"]["code"] == (
        "Book.objects.annotate(describe_failure_probe=F(price)).filter(price__lt=9)"
        ".order_by('title').values_list('title', 'describe_failure_probe')"
    )


def test_stack_capture_failure_never_breaks_the_query(monkeypatch):
    library()
    expected = [b.title for b in Book.objects.filter(price__lt=10).order_by("title")]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken stacks")

    monkeypatch.setattr(stacks, "capture_shared", broken)
    before = recorder.failures()
    with tracer.capture() as trace:
        result = [b.title for b in Book.objects.filter(price__lt=10).order_by("title")]
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)

    assert result == expected == ["One", "Two"]
    # Both statements are kept, without a location.
    orm, raw = trace.statements
    assert orm.sql.startswith('SELECT "demo_app_book"."id"')
    assert (raw.sql, raw.rows_fetched, raw.stack) == ("SELECT 1", 1, None)
    assert [s["location"] for s in trace.to_dict()["statements"]] == [None, None]
    assert recorder.failures() > before


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_save_deprecation_warnings_name_the_callers_line():
    # Django 5.2 warns about positional save()/asave() args at the caller's line
    # (stacklevel): no wrapper frame of the tracer may sit in between.
    from django.utils.deprecation import RemovedInDjango60Warning

    ann = Author.objects.create(name="Ann")
    lines = {}

    async def run() -> None:
        lines["asave"] = lineno() + 1
        await ann.asave(False)

    with tracer.capture() as trace:
        with pytest.warns(RemovedInDjango60Warning) as sync_warnings:
            lines["save"] = lineno() + 1
            ann.save(False)
        with pytest.warns(RemovedInDjango60Warning) as async_warnings:
            async_to_sync(run)()

    assert [(w.filename, w.lineno) for w in sync_warnings] == [(HERE, lines["save"])]
    assert [(w.filename, w.lineno) for w in async_warnings] == [(HERE, lines["asave"])]
    assert [s.operation.trigger for s in trace.statements if s.kind == "execute"][:2] == [
        "save",
        "save",
    ]


def test_uninstall_restores_the_orms_methods_and_install_puts_them_back():
    from django.db.models import query

    from tracer import pipeline

    wrapper = QuerySet.__dict__["filter"]
    original = wrapper.__wrapped__
    prefetch_wrapper = query.prefetch_one_level
    library()
    pipeline.uninstall()
    try:
        assert QuerySet.__dict__["filter"] is original
        assert query.prefetch_one_level is prefetch_wrapper.__wrapped__
        with tracer.capture() as trace:
            titles = list(Book.objects.filter(price__lt=10).values_list("title", flat=True))
        # The backend stages still record; the Model/Manager/QuerySet ones do not.
        [statement] = trace.statements
        assert sorted(titles) == ["One", "Two"]
        assert statement.operation is None
        assert statement.stages["compiler"]["class"] == COMPILERS["sqlite"]["SQLCompiler"]
    finally:
        pipeline.install()
    assert QuerySet.__dict__["filter"].__wrapped__ is original
    with tracer.capture() as trace:
        list(Book.objects.filter(price__lt=10))
    assert trace.statements[0].operation.trigger == "iteration"


# Reads of eager loads -------------------------------------------------------------------


def forward_get() -> Any:
    from django.db.models.fields.related_descriptors import ForwardManyToOneDescriptor

    return ForwardManyToOneDescriptor.__dict__["__get__"]


def test_the_forward_descriptor_is_wrapped_only_while_a_trace_watches_reads():
    import threading

    library()
    original = forward_get()
    assert recorder.watches() == 0
    assert not hasattr(original, "__wrapped__")  # nothing watches: Django's own
    with tracer.capture() as trace:
        list(Book.objects.order_by("id"))  # no select_related: nothing to watch
        assert forward_get() is original
        books = list(Book.objects.select_related("author").order_by("id"))
        assert forward_get().__wrapped__ is original
        # Another thread records nothing and reads as before.
        names: list[str] = []
        thread = threading.Thread(target=lambda: names.append(books[2].author.name))
        thread.start()
        thread.join()
        assert names == ["Bob"]
        assert trace.operations[1].selected == {"author": False}
        assert books[0].author.name == "Ann"
        assert trace.operations[1].selected == {"author": True}
    assert forward_get() is original
    assert recorder.watches() == 0


def test_pickling_while_a_trace_watches_reads():
    library()
    with tracer.capture() as trace:
        books = list(Book.objects.select_related("author"))
        copied = pickle.loads(pickle.dumps(books))
    assert [b.author.name for b in copied] == [b.author.name for b in books]
    assert trace.operations[0].selected == {"author": None}


def test_uninstall_while_a_trace_watches_and_install_again():
    from tracer import pipeline

    library()
    original = forward_get()
    with tracer.capture() as trace:
        books = list(Book.objects.select_related("author"))
        pipeline.uninstall()
        try:
            assert forward_get() is original
        finally:
            pipeline.install()
        assert forward_get().__wrapped__ is original
        books[0].author  # noqa: B018
    assert forward_get() is original
    assert trace.operations[0].selected == {"author": True}


def test_a_failure_to_record_a_read_never_breaks_it(monkeypatch):
    library()

    def broken(*args: Any) -> None:
        raise RuntimeError("broken index")

    monkeypatch.setattr(recorder, "index_pending", broken)
    before = recorder.failures()
    with tracer.capture() as trace:
        books = list(Book.objects.select_related("author").order_by("id"))
        assert [book.author.name for book in books] == ["Ann", "Ann", "Bob"]

    assert recorder.failures() == before + 3
    assert trace.operations[0].selected == {"author": False}


@override_settings(TRACER={"CAPTURE": "always", "ALWAYS_TRACE_STATEMENTS": 2})
def test_a_rolling_trace_cut_before_the_reads_does_not_judge_them():
    library()
    try:
        books = list(Book.objects.select_related("author"))
        Book.objects.count()
        Book.objects.count()  # the third statement starts the next rolling trace
        books[0].author  # noqa: B018
        cut = [t for t in tracer.always_traces() if t.operations and t.operations[0].selected]
        assert [t.operations[0].selected for t in cut] == [{"author": None}]
    finally:
        # The rolling trace of this thread would go on watching into later tests.
        ambient = recorder._ambient.get()
        if ambient is not None:
            ambient.finish()
        recorder._ambient.set(None)
    assert recorder.watches() == 0


def test_a_watch_counts_what_nothing_read_yet(monkeypatch):
    # At 0 a read has nothing to tell, and costs one context-variable read more.
    monkeypatch.setattr(recorder, "HOLD_RECENT", 2)
    library()
    with tracer.capture() as trace:
        books = list(Book.objects.select_related("author", "publisher"))
        assert trace._watch.unread == 2
        books[0].author  # noqa: B018
        books[1].author  # noqa: B018
        assert trace._watch.unread == 1
        list(Book.objects.prefetch_related("author"))
        assert trace._watch.unread == 2
        books[1].publisher  # noqa: B018
        assert trace._watch.unread == 1
        list(Book.objects.select_related("publisher"))  # the first one is let go
        assert trace._watch.unread == 2
    assert [op.selected for op in trace.operations if op.selected] == [
        {"author": True, "publisher": True},
        {"publisher": False},
    ]
