"""Unfolding an expression: the manager, each call with what it changed in the Query,
the compiler and its SQL, on the three engines, without sending a statement."""

from __future__ import annotations

import json

import pytest
from django.db import connections

import tracer
from tracer.playground import PlaygroundError, unfold
from tracer.playground.unfold import changes, state_text, where_text

pytestmark = pytest.mark.django_db(databases="__all__")

EXAMPLE = (
    'Book.objects.filter(author__name__startswith="A").select_related("author")'
    '.order_by("-published")[:10]'
)

BOOK = {
    "alias": "demo_app_book",
    "table": "demo_app_book",
    "join": None,
    "parent": None,
    "on": [],
    "relation": None,
    "condition": None,
}
AUTHOR_JOIN = {
    "alias": "demo_app_author",
    "table": "demo_app_author",
    "join": "INNER JOIN",
    "parent": "demo_app_book",
    "on": [["author_id", "id"]],
    "relation": "author",
    "condition": None,
}
STARTSWITH = {
    "connector": "AND",
    "negated": False,
    "children": [{"lookup": "startswith", "lhs": "demo_app_author.name", "rhs": "?"}],
}

COLUMNS = {
    "sqlite": (
        '"demo_app_book"."id", "demo_app_book"."title", "demo_app_book"."author_id", '
        '"demo_app_book"."publisher_id", "demo_app_book"."price", "demo_app_book"."published"'
    ),
    "postgresql": (
        '"demo_app_book"."id", "demo_app_book"."title", "demo_app_book"."author_id", '
        '"demo_app_book"."publisher_id", "demo_app_book"."price", "demo_app_book"."published"'
    ),
    "mysql": (
        "`demo_app_book`.`id`, `demo_app_book`.`title`, `demo_app_book`.`author_id`, "
        "`demo_app_book`.`publisher_id`, `demo_app_book`.`price`, `demo_app_book`.`published`"
    ),
}
EXAMPLE_SQL = {
    "sqlite": (
        f'SELECT {COLUMNS["sqlite"]}, "demo_app_author"."id", "demo_app_author"."name" '
        'FROM "demo_app_book" INNER JOIN "demo_app_author" ON ("demo_app_book"."author_id" = '
        '"demo_app_author"."id") WHERE "demo_app_author"."name" LIKE %s ESCAPE \'\\\' '
        'ORDER BY "demo_app_book"."published" DESC LIMIT 10'
    ),
    "postgresql": (
        f'SELECT {COLUMNS["postgresql"]}, "demo_app_author"."id", "demo_app_author"."name" '
        'FROM "demo_app_book" INNER JOIN "demo_app_author" ON ("demo_app_book"."author_id" = '
        '"demo_app_author"."id") WHERE "demo_app_author"."name"::text LIKE %s '
        'ORDER BY "demo_app_book"."published" DESC LIMIT 10'
    ),
    "mysql": (
        f"SELECT {COLUMNS['mysql']}, `demo_app_author`.`id`, `demo_app_author`.`name` "
        "FROM `demo_app_book` INNER JOIN `demo_app_author` ON (`demo_app_book`.`author_id` = "
        "`demo_app_author`.`id`) WHERE `demo_app_author`.`name` LIKE BINARY %s "
        "ORDER BY `demo_app_book`.`published` DESC LIMIT 10"
    ),
}
COMPILERS = {
    "sqlite": "django.db.models.sql.compiler.SQLCompiler",
    "postgresql": "django.db.backends.postgresql.compiler.SQLCompiler",
    "mysql": "django.db.models.sql.compiler.SQLCompiler",
}


def unfolded(expression: str, alias: str):  # type: ignore[no-untyped-def]
    """unfold(), which must send no statement (recorded or not)."""
    with tracer.capture() as trace:
        pipeline = unfold(expression, alias, app="demo_app")
    assert trace.statements == []
    return pipeline


def test_the_issue_example_step_by_step(alias, vendor):
    pipeline = unfolded(EXAMPLE, alias)

    data = pipeline.to_dict()
    json.dumps(data)  # JSON-safe
    assert (data["expression"], data["code"], data["alias"], data["vendor"], data["kind"]) == (
        EXAMPLE,
        EXAMPLE,
        alias,
        vendor,
        "rows",
    )
    assert data["model"] == {"label": "demo_app.Book", "table": "demo_app_book"}
    manager = data["manager"]
    assert {key: manager[key] for key in manager if key != "compiled"} == {
        "name": "objects",
        "class": "django.db.models.manager.Manager",
        "code": "Book.objects",
        "start": 0,
        "end": 12,
        "queryset_class": "django.db.models.query.QuerySet",
    }
    assert (
        manager["compiled"]["sql"]
        == f"SELECT {COLUMNS[vendor]} FROM {_q('demo_app_book', vendor)}"
    )
    assert manager["compiled"]["state"]["tables"] == [BOOK]
    steps = [
        (step["index"], step["method"], step["code"], EXAMPLE[step["start"] : step["end"]])
        for step in data["steps"]
    ]
    assert steps == [
        (
            0,
            "filter",
            '.filter(author__name__startswith="A")',
            '.filter(author__name__startswith="A")',
        ),
        (1, "select_related", '.select_related("author")', '.select_related("author")'),
        (2, "order_by", '.order_by("-published")', '.order_by("-published")'),
        (3, "__getitem__", "[:10]", "[:10]"),
    ]
    assert [step["changes"] for step in data["steps"]] == [
        [
            {
                "key": "tables",
                "before": [BOOK],
                "after": [BOOK, AUTHOR_JOIN],
                "text": "+ INNER JOIN demo_app_author ON demo_app_book.author_id = "
                "demo_app_author.id (via author)",
            },
            {
                "key": "where",
                "before": None,
                "after": STARTSWITH,
                "text": "demo_app_author.name startswith ?",
            },
        ],
        [{"key": "select_related", "before": False, "after": {"author": {}}, "text": "author"}],
        [{"key": "order_by", "before": [], "after": ["-published"], "text": "-published"}],
        [{"key": "high_mark", "before": None, "after": 10, "text": "10"}],
    ]
    assert all(
        step["queryset_class"] == "django.db.models.query.QuerySet" for step in data["steps"]
    )
    assert all(step["build_ms"] > 0 for step in data["steps"])
    assert data["terminal"] is None
    [statement] = data["statements"]
    assert statement == {
        "purpose": "rows",
        "sql": EXAMPLE_SQL[vendor],
        "params": ["A%"],
        "compiler": COMPILERS[vendor],
        "query": "Query",
        "state": data["steps"][-1]["compiled"]["state"],
        "note": None,
    }
    assert data["notes"] == []


def _q(name: str, vendor: str) -> str:
    return f"`{name}`" if vendor == "mysql" else f'"{name}"'


def test_each_step_has_its_own_sql(alias, vendor):
    pipeline = unfolded('Tag.objects.filter(name="a").order_by("name")', alias)
    tag = _q("demo_app_tag", vendor)
    columns = f"{tag}.{_q('id', vendor)}, {tag}.{_q('name', vendor)}"
    where = f" WHERE {tag}.{_q('name', vendor)} = %s"
    assert [(step.compiled.sql, step.compiled.params) for step in pipeline.steps] == [
        (f"SELECT {columns} FROM {tag}{where}", ["a"]),
        (f"SELECT {columns} FROM {tag}{where} ORDER BY {tag}.{_q('name', vendor)} ASC", ["a"]),
    ]


@pytest.mark.parametrize(
    "expression",
    [
        EXAMPLE,
        'Author.objects.annotate(n=Count("books")).filter(n__gt=1).values("name")',
        'Author.objects.filter(Exists(Book.objects.filter(author=OuterRef("pk"))))',
        'Author.objects.prefetch_related("books").first()',
        "Book.objects.count()",
        'Book.objects.aggregate(Sum("price"), m=Max("published"))',
        "Book.objects.exists()",
        'Book.objects.get(title="a")',
        'Book.objects.earliest("published")',
        "Book.objects.all()[3]",
        "Book.objects.in_bulk([1, 2])",
        "Book.objects.select_for_update().filter(pk=1)",
        'Book.objects.select_for_update().get(title="a")',
        'Book.objects.filter(author__name="x").update(title="y")',
        "Book.objects.filter(price__lt=1).delete()",
        'Tag.objects.create(name="x")',
        'Tag.objects.get_or_create(name="x")',
        'Tag.objects.update_or_create(name="x", defaults={"name": "y"})',
        'Tag.objects.bulk_create([Tag(name="a"), Tag(id=9, name="b")])',
        'Tag.objects.bulk_update([Tag(id=1, name="a")], ["name"])',
    ],
)
def test_compiling_sends_no_statement(alias, expression):
    pipeline = unfolded(expression, alias)
    assert pipeline.statements


def test_compiling_on_a_new_mysql_connection_sends_no_statement():
    from django.conf import settings

    if "mysql" in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE["mysql"])
    # Django reads the server's version once per connection (a cached property).
    connections["mysql"].__dict__.pop("mysql_server_data", None)
    pipeline = unfolded('Book.objects.filter(author__name="x").update(title="y")', "mysql")
    assert pipeline.statements[0].sql.startswith("UPDATE `demo_app_book` SET")


def test_evaluating_calls_show_the_statement_django_would_send(alias, vendor):
    book = _q("demo_app_book", vendor)
    count = unfolded("Book.objects.filter(price__lt=5).count()", alias)
    assert count.kind == "evaluate"
    assert count.terminal == {
        "method": "count",
        "code": ".count()",
        "kind": "evaluate",
        "start": 32,
        "end": 40,
    }
    [statement] = count.statements
    assert (statement.purpose, statement.sql, statement.query) == (
        "count",
        f"SELECT COUNT(*) AS {_q('__count', vendor)} FROM {book} "
        f"WHERE {book}.{_q('price', vendor)} < %s",
        "Query",
    )
    assert statement.state["where"] == {
        "connector": "AND",
        "negated": False,
        "children": [{"lookup": "lt", "lhs": "demo_app_book.price", "rhs": "?"}],
    }
    exists = unfolded('Book.objects.filter(title="a").exists()', alias).statements[0]
    assert (exists.sql, exists.params) == (
        f"SELECT %s AS {_q('a', vendor)} FROM {book} WHERE {book}.{_q('title', vendor)} = %s "
        "LIMIT 1",
        [1, "a"],
    )
    get = unfolded('Book.objects.get(title="a")', alias).statements[0]
    assert get.sql.endswith(f"WHERE {book}.{_q('title', vendor)} = %s LIMIT 21")
    assert get.params == ["a"]


def test_no_statement_when_django_knows_the_answer(alias):
    pipeline = unfolded("Book.objects.none()", alias)
    assert [(s.sql, s.note) for s in pipeline.statements] == [
        (None, "Django knows it matches nothing (EmptyResultSet): no statement is sent.")
    ]
    assert pipeline.steps[0].changes[0].text == "Nothing"
    count = unfolded("Book.objects.filter(pk__in=[]).count()", alias)
    assert [(s.sql, s.note) for s in count.statements] == [
        (None, "Django knows the answer without a query: none is sent.")
    ]


def test_notes_on_prefetching_and_locking(alias):
    pipeline = unfolded(
        'Author.objects.prefetch_related("books__tags").select_for_update()', alias
    )
    assert pipeline.notes == [
        "prefetch_related(books__tags): once the rows are fetched, one more query per "
        "relation, filtered by the keys of the rows (run it to see them).",
        "FOR UPDATE locks the rows it reads: running does it in a transaction.",
    ]


def test_a_compile_error_points_at_the_call_that_caused_it(alias):
    with pytest.raises(PlaygroundError) as info:
        unfold(
            'Book.objects.filter(price__lt=1).select_related("nope")[:3]', alias, app="demo_app"
        )
    error = info.value
    assert error.message == (
        "FieldError: Invalid field name(s) given in select_related: 'nope'. Choices are: "
        "author, publisher"
    )
    assert error.text[error.start : error.end] == '.select_related("nope")'


def test_an_evaluating_error_points_at_the_call(alias):
    with pytest.raises(PlaygroundError) as info:
        unfold("Book.objects.earliest()", alias, app="demo_app")
    error = info.value
    assert error.message == (
        "earliest(): ValueError: earliest() and latest() require either fields as positional "
        "arguments or 'get_latest_by' in the model's Meta."
    )
    assert error.text[error.start : error.end] == ".earliest()"


def test_an_unknown_database():
    with pytest.raises(PlaygroundError) as info:
        unfold("Book.objects.all()", "nope", app="demo_app")
    assert info.value.message == "There is no database 'nope'."


def test_secret_looking_params_are_masked(alias):
    text = 'auth.User.objects.filter(password="hunter2", username="ann")'
    pipeline = unfolded(text, alias)
    assert pipeline.statements[0].params == ["********", "ann"]
    assert pipeline.code == "auth.User.objects.filter(password='********', username=\"ann\")"
    data = pipeline.to_dict()
    assert data.pop("expression") == text  # what was typed, as typed
    assert "hunter2" not in json.dumps(data)


# State in words ----------------------------------------------------------------------


def test_changes_in_words():
    before = {"order_by": ["title"], "high_mark": None, "low_mark": 0, "distinct": False}
    after = {"order_by": [], "high_mark": 20, "low_mark": 10, "distinct": True}
    assert [(change.key, change.text) for change in changes(before, after)] == [
        ("order_by", "title -> (none)"),
        ("high_mark", "20"),
        ("low_mark", "0 -> 10"),
        ("distinct", "True"),
    ]


def test_state_in_words():
    assert state_text("select_related", True) == "every non-null foreign key"
    assert state_text("select_related", {"author": {}, "book": {"author": {}}}) == (
        "author, book__author"
    )
    assert state_text("group_by", True) == "every selected column"
    assert state_text("deferred", {"mode": "only", "fields": ["a", "b"]}) == "only: a, b"
    assert state_text("annotations", {"n": "Count(a.id)"}) == "n = Count(a.id)"
    assert state_text(
        "select_for_update",
        {"nowait": True, "skip_locked": False, "of": ["self"], "no_key": False},
    ) == ("FOR UPDATE (nowait, of self)")
    assert state_text("combinator", {"kind": "union", "all": True, "queries": 2, "parts": []}) == (
        "UNION ALL of 2 queries"
    )
    assert state_text("tables", [BOOK, {**AUTHOR_JOIN, "alias": "T3"}]) == (
        "FROM demo_app_book\nINNER JOIN demo_app_author T3 ON demo_app_book.author_id = "
        "T3.id (via author)"
    )


def test_where_in_words():
    tree = {
        "connector": "AND",
        "negated": False,
        "children": [
            {"lookup": "exact", "lhs": "t.a", "rhs": "?"},
            {
                "connector": "OR",
                "negated": True,
                "children": [
                    {"lookup": "isnull", "lhs": "t.b", "rhs": True},
                    {"lookup": "in", "lhs": "t.c", "rhs": "(?, ?)"},
                ],
            },
            "Exists(demo_app.Book)",
        ],
    }
    assert where_text(tree) == (
        "t.a = ? AND (NOT (t.b IS NULL OR t.c IN (?, ?))) AND Exists(demo_app.Book)"
    )
