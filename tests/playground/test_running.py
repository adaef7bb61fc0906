"""Running an expression: rows, the trace with its stage timings, EXPLAIN, the row
limit and the time limit, on the three engines, and always rolled back."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connections

import tracer
from demo_app.models import Author, Book, Publisher, Review, Tag
from tests.playground.test_unfold import EXAMPLE
from tests.testapp.models import Author as Writer
from tests.testapp.models import Profile
from tracer.playground import running
from tracer.playground.running import run

pytestmark = pytest.mark.django_db(databases="__all__")

SLOW = {
    # Never ends by itself.
    "sqlite": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    ),
    "postgresql": "SELECT pg_sleep(30)",
    "mysql": "SELECT SLEEP(30)",
}


def bookstore(alias: str) -> list[Book]:
    ann = Author.objects.using(alias).create(name="Ann")
    bob = Author.objects.using(alias).create(name="Bob")
    house = Publisher.objects.using(alias).create(name="House")
    return [
        Book.objects.using(alias).create(
            title=title,
            author=author,
            publisher=house,
            price=Decimal(price),
            published=datetime.date(2020, month, 1),
        )
        for title, author, price, month in (
            ("One", ann, "5", 1),
            ("Two", ann, "8", 3),
            ("Three", bob, "20", 2),
        )
    ]


def test_the_issue_example_runs(alias, vendor):
    one, two, _ = bookstore(alias)
    ann = one.author_id

    result = run(EXAMPLE, alias, app="demo_app")

    assert result.ran and result.error is None and not result.timed_out
    assert result.columns == [
        "id",
        "title",
        "author_id",
        "publisher_id",
        "price",
        "published",
        "author.id",
        "author.name",
    ]
    assert result.rows == [
        [two.pk, "Two", ann, two.publisher_id, "8.00", "2020-03-01", ann, "Ann"],
        [one.pk, "One", ann, one.publisher_id, "5.00", "2020-01-01", ann, "Ann"],
    ]
    assert result.truncated is False
    data = result.to_dict()
    json.dumps(data)
    [statement] = data["trace"]["statements"]
    assert statement["sql"] == data["pipeline"]["statements"][0]["sql"]
    queryset = statement["stages"]["queryset"]
    assert (queryset["code"], queryset["trigger"]) == (EXAMPLE, "iteration")
    assert [call["code"] for call in queryset["calls"]] == [
        '.filter(author__name__startswith="A")',
        '.select_related("author")',
        '.order_by("-published")',
        "[:10]",
    ]
    assert statement["stages"]["manager"] == {
        "name": "objects",
        "class": "django.db.models.manager.Manager",
        "related": None,
    }
    assert statement["stages"]["backend"]["in_atomic_block"] is True
    [timing] = result.timings
    assert (timing["index"], timing["trigger"], timing["rows"], timing["error"]) == (
        0,
        "iteration",
        2,
        None,
    )
    for stage in ("build_ms", "compile_ms", "execute_ms", "fetch_ms", "hydrate_ms"):
        assert timing[stage] > 0, stage
    assert result.explain["vendor"] == vendor
    assert result.explain["sql"] == statement["sql"]
    assert result.explain_error is None
    assert result.run_ms > 0
    assert result.notes == []


def test_only_the_row_limit_is_read(alias):
    for name in "edcba":
        Tag.objects.using(alias).create(name=name)

    result = run('Tag.objects.order_by("name")', alias, row_limit=2, app="demo_app")

    assert [row[1] for row in result.rows] == ["a", "b"]
    assert result.truncated is True
    assert result.notes == ["Read with iterator(): the first 2 rows at most."]
    [timing] = result.timings
    # The SQL is the one compiled (no LIMIT added); one chunk of 3 rows was read.
    assert "LIMIT" not in timing["sql"]
    assert (timing["trigger"], timing["rows"]) == ("iterator", 3)


def test_a_slice_within_the_limit_is_read_whole(alias):
    for name in "abc":
        Tag.objects.using(alias).create(name=name)
    result = run('Tag.objects.order_by("name")[1:3]', alias, row_limit=2, app="demo_app")
    assert ([row[1] for row in result.rows], result.truncated, result.notes) == (
        ["b", "c"],
        False,
        [],
    )


def test_evaluating_calls(alias, vendor):
    bookstore(alias)
    count = run("Book.objects.filter(price__lt=10).count()", alias, app="demo_app")
    assert (count.value, count.columns, count.rows) == (2, ["count"], [[2]])
    assert count.timings[0]["trigger"] == "count"
    total = run('Book.objects.aggregate(total=Sum("price"), n=Count("id"))', alias, app="demo_app")
    # SQLite sums decimals without their scale.
    assert (total.columns, total.rows) == (
        ["total", "n"],
        [["33" if vendor == "sqlite" else "33.00", 3]],
    )
    values = run(
        'Book.objects.order_by("title").values_list("title", "price")[:2]', alias, app="demo_app"
    )
    assert (values.columns, values.rows) == (
        ["title", "price"],
        [["One", "5.00"], ["Three", "20.00"]],
    )
    flat = run(
        'Book.objects.order_by("-title").values_list("title", flat=True)[:1]',
        alias,
        app="demo_app",
    )
    assert (flat.columns, flat.rows) == (["title"], [["Two"]])
    got = run('Book.objects.get(title="Two")', alias, app="demo_app")
    assert got.rows[0][1] == "Two"
    missing = run('Book.objects.get(title="Four")', alias, app="demo_app")
    assert missing.error == {
        "type": "demo_app.models.Book.DoesNotExist",
        "message": "Book matching query does not exist.",
    }
    assert missing.rows == [] and not missing.timed_out
    assert missing.explain is not None  # the SELECT itself ran fine


def test_the_trace_shows_arguments_as_typed(alias):
    result = run(
        'Tag.objects.exclude(name="x").get(pk__in=Tag.objects.values("pk"))', alias, app="demo_app"
    )
    assert result.error["type"] == "demo_app.models.Tag.DoesNotExist"
    [statement] = result.trace["statements"]
    assert statement["stages"]["queryset"]["code"] == (
        'Tag.objects.exclude(name="x").get(pk__in=Tag.objects.values("pk"))'
    )


def test_deferred_fields_are_not_read(alias):
    bookstore(alias)
    result = run('Book.objects.only("title").order_by("title")[:1]', alias, app="demo_app")
    assert result.columns == ["id", "title"]
    assert len(result.trace["statements"]) == 1  # no query per deferred field


def test_prefetching_shows_each_statement(alias):
    bookstore(alias)
    result = run(
        'Author.objects.prefetch_related("books").order_by("name")[:5]', alias, app="demo_app"
    )
    assert [(t["trigger"], t["rows"]) for t in result.timings] == [
        ("iteration", 2),
        ("prefetch", 3),
    ]
    assert result.rows == [[result.rows[0][0], "Ann"], [result.rows[1][0], "Bob"]]


@pytest.mark.parametrize(
    "expression",
    [
        'Book.objects.select_related("author", "publisher")[:5]',
        'Book.objects.select_related("author").get(title="One")',
        'Book.objects.select_related("author").first()',
        'Book.objects.select_related("author").in_bulk()',
        'Review.objects.select_related("book__author")[:5]',
        'Book.objects.prefetch_related("author")[:5]',
    ],
)
def test_related_objects_the_table_shows_are_read(alias, expression):
    one, *_ = bookstore(alias)
    Review.objects.using(alias).create(book=one, rating=5, text="Good")

    result = run(expression, alias, app="demo_app")

    assert any("." in column for column in result.columns)
    assert result.trace["findings"]["unused_eager"] == []


def test_columns_of_a_relation_the_first_row_lacks(alias):
    # Ann has no profile: the table still shows Bob's, and the join is read. The
    # profile's own cache of its author (the way back) is not a column.
    Writer.objects.using(alias).create(name="Ann")
    bob = Writer.objects.using(alias).create(name="Bob")
    Profile.objects.using(alias).create(author=bob, bio="Writes")

    result = run('Author.objects.select_related("profile").order_by("name")', alias, app="testapp")

    assert result.columns == ["id", "name", "profile.id", "profile.author_id", "profile.bio"]
    ann, bob_row = result.rows
    assert ann[1:] == ["Ann", None, None, None]
    assert bob_row == [bob.pk, "Bob", bob.profile.pk, bob.pk, "Writes"]
    assert result.trace["findings"]["unused_eager"] == []


def test_a_prefetch_the_table_does_not_show_is_unused(alias):
    bookstore(alias)
    result = run('Author.objects.prefetch_related("books")[:5]', alias, app="demo_app")
    [finding] = result.trace["findings"]["unused_eager"]
    assert (finding["kind"], finding["lookup"], finding["rows"]) == (
        "prefetch_related",
        "books",
        3,
    )


def test_locking_reads_run_inside_the_transaction(alias):
    bookstore(alias)
    result = run(
        "Book.objects.select_for_update().filter(price__gt=10)[:5]", alias, app="demo_app"
    )
    assert result.error is None
    assert [row[1] for row in result.rows] == ["Three"]


def test_secret_looking_columns_are_masked(alias):
    User.objects.db_manager(alias).create_user("ann", password="hunter2")
    result = run('auth.User.objects.values("username", "password")', alias)
    assert result.rows == [["ann", "********"]]


def test_a_write_is_never_run(alias, vendor):
    Tag.objects.using(alias).create(name="kept")
    with tracer.capture() as trace:
        result = run('Tag.objects.filter(name="kept").update(name="gone")', alias, app="demo_app")
    assert trace.statements == []
    assert (result.ran, result.rows, result.trace, result.notes) == (
        False,
        [],
        None,
        ["update() changes data: it is never run."],
    )
    assert result.pipeline.statements[0].sql.startswith("UPDATE")
    assert list(Tag.objects.using(alias).values_list("name", flat=True)) == ["kept"]


def test_a_slow_statement_is_stopped(alias, vendor, monkeypatch):
    def slow(result, queryset, parsed, row_limit):  # type: ignore[no-untyped-def]
        with connections[alias].cursor() as cursor:
            cursor.execute(SLOW[vendor])

    monkeypatch.setattr(running, "_evaluate", slow)
    result = run("Tag.objects.all()", alias, timeout_ms=50, app="demo_app")

    assert result.timed_out is True
    assert result.error["type"] == "django.db.utils.OperationalError"
    assert result.notes == ["A statement was stopped after 50 ms."]
    assert result.explain is None
    [statement] = result.trace["statements"]
    assert statement["sql"] == SLOW[vendor]
    assert statement["stages"]["backend"]["error"]["type"].endswith("OperationalError")
    # The connection is usable afterwards.
    assert Tag.objects.using(alias).count() == 0


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_whatever_runs_is_rolled_back(alias, vendor, connection, monkeypatch):
    """Even a write that got past the allow-list would be undone."""
    evaluate = running._evaluate

    def writing(result, queryset, parsed, row_limit):  # type: ignore[no-untyped-def]
        Tag.objects.using(alias).create(name="written")
        evaluate(result, queryset, parsed, row_limit)

    monkeypatch.setattr(running, "_evaluate", writing)
    result = run("Tag.objects.all()", alias, app="demo_app")

    assert result.error is None
    assert [row[1] for row in result.rows] == ["written"]  # seen inside the transaction
    assert not connection.in_atomic_block
    assert Tag.objects.using(alias).count() == 0  # and gone after it
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("0",)
        elif vendor == "mysql":
            cursor.execute("SELECT @@SESSION.max_statement_time")
            assert cursor.fetchone() == (0.0,)


def test_running_on_an_engine_without_a_time_limit(monkeypatch):
    monkeypatch.setattr(connections["default"], "vendor", "oracle")
    with tracer.capture() as trace:
        result = run("Tag.objects.all()", "default", app="demo_app")
    assert (result.ran, result.notes) == (
        False,
        ["Running is offered on sqlite, postgresql, mysql, not on oracle."],
    )
    assert trace.statements == []


def test_row_limit_must_be_positive():
    with pytest.raises(ValueError):
        run("Tag.objects.all()", row_limit=0, app="demo_app")
