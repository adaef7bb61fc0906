"""Write methods are compiled as Django would send them, and never run."""

from __future__ import annotations

import pytest
from django.db import connections

import tracer
from demo_app.models import Tag
from tracer.playground import PlaygroundError, unfold

pytestmark = pytest.mark.django_db(databases="__all__")

UNKNOWN_PK = {
    "type": "tracer.playground.compiling.Unknown",
    "repr": "<the primary key of the row found>",
}
UNKNOWN_PKS = {
    "type": "tracer.playground.compiling.Unknown",
    "repr": "<the primary keys collected>",
}


def q(name: str, vendor: str) -> str:
    return f"`{name}`" if vendor == "mysql" else f'"{name}"'


def insert(tag: str, vendor: str) -> str:
    """The INSERT of one tag's name."""
    return f"INSERT INTO {tag} ({q('name', vendor)}) VALUES (%s) RETURNING {tag}.{q('id', vendor)}"


def planned(expression: str, alias: str) -> list[tuple[str, str | None, object]]:
    """(purpose, SQL, params) of each statement; nothing sent, nothing written."""
    Tag.objects.using(alias).create(name="kept")
    with tracer.capture() as trace:
        pipeline = unfold(expression, alias, app="demo_app")
    assert trace.statements == []
    assert pipeline.kind == "write"
    assert (
        pipeline.notes[0]
        == f"{pipeline.terminal['method']}() changes data: it is compiled, never run."
    )
    assert list(Tag.objects.using(alias).values_list("name", flat=True)) == ["kept"]
    return [(s.purpose, s.sql, s.params) for s in pipeline.statements]


def test_update(alias, vendor):
    tag = q("demo_app_tag", vendor)
    assert planned('Tag.objects.filter(name="kept").update(name="x")', alias) == [
        (
            "update",
            f"UPDATE {tag} SET {q('name', vendor)} = %s WHERE {tag}.{q('name', vendor)} = %s",
            ["x", "kept"],
        )
    ]


def test_update_across_a_join(alias, vendor):
    book = q("demo_app_book", vendor)
    [(purpose, sql, params)] = planned(
        'Book.objects.filter(author__name="x").update(title="y")', alias
    )
    assert (purpose, params) == ("update", ["y", "x"])
    assert sql == (
        f"UPDATE {book} SET {q('title', vendor)} = %s WHERE {book}.{q('id', vendor)} IN "
        f"(SELECT U0.{q('id', vendor)} FROM {book} U0 "
        f"INNER JOIN {q('demo_app_author', vendor)} U1 "
        f"ON (U0.{q('author_id', vendor)} = U1.{q('id', vendor)}) "
        f"WHERE U1.{q('name', vendor)} = %s)"
    )


def test_update_that_needs_the_keys_first(monkeypatch):
    # MySQL (not MariaDB) cannot select from the table it updates: Django reads the
    # primary keys first. Shown as that SELECT, then the UPDATE it leads to.
    monkeypatch.setattr(connections["default"].features, "update_can_self_select", False)
    pipeline = unfold(
        'Book.objects.filter(author__name="x").update(title="y")', "default", app="demo_app"
    )
    select, update = pipeline.statements
    assert (select.purpose, select.sql, select.params, select.note) == (
        "select the primary keys to update",
        'SELECT "demo_app_book"."id" FROM "demo_app_book" INNER JOIN "demo_app_author" ON '
        '("demo_app_book"."author_id" = "demo_app_author"."id") '
        'WHERE "demo_app_author"."name" = %s',
        ["x"],
        "Django runs this first and reads the primary keys it returns.",
    )
    assert select.compiler == "django.db.models.sql.compiler.SQLCompiler"
    assert (update.purpose, update.sql, update.note) == (
        "update",
        None,
        "Then UPDATE demo_app_book ... WHERE its primary key IN (the keys returned): its SQL "
        "holds them, so it is only known once the SELECT has run.",
    )


def test_delete_without_dependents_is_one_statement(alias, vendor):
    tag = q("demo_app_tag", vendor)
    pipeline = unfold("Review.objects.filter(rating__lt=2).delete()", alias, app="demo_app")
    [delete] = pipeline.statements
    review = q("demo_app_review", vendor)
    assert (delete.purpose, delete.sql, delete.params) == (
        "delete",
        f"DELETE FROM {review} WHERE {review}.{q('rating', vendor)} < %s",
        [2],
    )
    assert delete.note == (
        "Nothing depends on these rows (no cascades, no signal receivers): one DELETE."
    )
    assert tag  # the tag table is untouched (see planned())


def test_delete_collects_first(alias, vendor):
    tag = q("demo_app_tag", vendor)
    statements = planned('Tag.objects.filter(name="kept").delete()', alias)
    assert statements == [
        (
            "collect the rows to delete",
            f"SELECT {tag}.{q('id', vendor)}, {tag}.{q('name', vendor)} FROM {tag} "
            f"WHERE {tag}.{q('name', vendor)} = %s",
            ["kept"],
        ),
        ("delete", f"DELETE FROM {tag} WHERE {tag}.{q('id', vendor)} IN (%s)", [UNKNOWN_PKS]),
    ]
    pipeline = unfold('Tag.objects.filter(name="kept").delete()', alias, app="demo_app")
    assert pipeline.notes[1] == (
        "For the rows collected, Django then handles what points to them (on_delete): "
        "demo_app.Book_tags.tag: CASCADE."
    )


def test_create(alias, vendor):
    tag = q("demo_app_tag", vendor)
    assert planned('Tag.objects.create(name="x")', alias) == [
        (
            "create",
            insert(tag, vendor),
            ["x"],
        )
    ]


def test_get_or_create(alias, vendor):
    tag = q("demo_app_tag", vendor)
    assert planned('Tag.objects.get_or_create(name="x")', alias) == [
        (
            "get",
            f"SELECT {tag}.{q('id', vendor)}, {tag}.{q('name', vendor)} FROM {tag} "
            f"WHERE {tag}.{q('name', vendor)} = %s LIMIT 21",
            ["x"],
        ),
        (
            "create",
            insert(tag, vendor),
            ["x"],
        ),
    ]


def test_update_or_create(alias, vendor):
    tag = q("demo_app_tag", vendor)
    lock = "" if vendor == "sqlite" else " FOR UPDATE"
    pipeline = unfold(
        'Tag.objects.update_or_create(name="x", defaults={"name": "y"}, '
        'create_defaults={"name": "z"})',
        alias,
        app="demo_app",
    )
    assert [(s.purpose, s.sql, s.params, s.note) for s in pipeline.statements] == [
        (
            "get",
            f"SELECT {tag}.{q('id', vendor)}, {tag}.{q('name', vendor)} FROM {tag} "
            f"WHERE {tag}.{q('name', vendor)} = %s LIMIT 21{lock}",
            ["x"],
            "Looks the row up and locks it, inside a transaction.",
        ),
        (
            "create",
            insert(tag, vendor),
            ["z"],
            "Only if no row was found, inside a savepoint.",
        ),
        (
            "update",
            f"UPDATE {tag} SET {q('name', vendor)} = %s WHERE {tag}.{q('id', vendor)} = %s",
            ["y", UNKNOWN_PK],
            "Only if a row was found: sets the defaults on it.",
        ),
    ]


def test_bulk_create(alias, vendor):
    tag = q("demo_app_tag", vendor)
    statements = planned('Tag.objects.bulk_create([Tag(name="a"), Tag(id=7, name="b")])', alias)
    returning = f" RETURNING {tag}.{q('id', vendor)}"
    if vendor == "postgresql":
        assert statements == [
            (
                "bulk_create",
                f'INSERT INTO {tag} ("id", "name") VALUES (%s, %s){returning}',
                [7, "b"],
            ),
            ("bulk_create", f'INSERT INTO {tag} ("name") VALUES (%s){returning}', ["a"]),
        ]
    else:
        assert statements == [
            (
                "bulk_create",
                f"INSERT INTO {tag} ({q('id', vendor)}, {q('name', vendor)}) "
                f"VALUES (%s, %s){returning}",
                [7, "b"],
            ),
            (
                "bulk_create",
                f"INSERT INTO {tag} ({q('name', vendor)}) VALUES (%s){returning}",
                ["a"],
            ),
        ]


def test_bulk_create_in_batches(alias, vendor):
    statements = planned(
        'Tag.objects.bulk_create([Tag(name="a"), Tag(name="b"), Tag(name="c")], batch_size=2, '
        "ignore_conflicts=True)",
        alias,
    )
    assert [params for _, _, params in statements] == (
        # PostgreSQL sends several rows as arrays (UNNEST), one row as values.
        [[["a", "b"]], ["c"]] if vendor == "postgresql" else [["a", "b"], ["c"]]
    )
    ignore = {
        "sqlite": "INSERT OR IGNORE INTO",
        "postgresql": "INSERT INTO",
        "mysql": "INSERT IGNORE INTO",
    }
    assert all(sql.startswith(ignore[vendor]) for _, sql, _ in statements)


def test_bulk_update(alias, vendor):
    tag = q("demo_app_tag", vendor)
    [(purpose, sql, params)] = planned(
        'Tag.objects.bulk_update([Tag(id=1, name="a"), Tag(id=2, name="b")], ["name"])', alias
    )
    assert purpose == "bulk_update"
    assert sql.startswith(f"UPDATE {tag} SET {q('name', vendor)} = ")
    assert sql.endswith(f"WHERE {tag}.{q('id', vendor)} IN (%s, %s)")
    assert params[-2:] == [1, 2]


def test_what_django_refuses_is_refused_where_it_is_called(alias):
    with pytest.raises(PlaygroundError) as info:
        unfold('Tag.objects.all()[:3].update(name="x")', alias, app="demo_app")
    error = info.value
    assert (
        error.message == "update(): TypeError: Cannot update a query once a slice has been taken."
    )
    assert error.text[error.start : error.end] == '.update(name="x")'
    with pytest.raises(PlaygroundError) as info:
        unfold('Tag.objects.values("name").delete()', alias, app="demo_app")
    assert info.value.message == (
        "delete(): TypeError: Cannot call delete() after .values() or .values_list()"
    )
    with pytest.raises(PlaygroundError) as info:
        unfold('Tag.objects.bulk_update([Tag(name="a")], ["name"])', alias, app="demo_app")
    assert info.value.message == (
        "bulk_update(): ValueError: All bulk_update() objects must have a primary key set."
    )
