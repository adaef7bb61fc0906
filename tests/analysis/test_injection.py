"""Raw SQL with values written in, from real recorded traces."""

from __future__ import annotations

import os
import sys

import pytest
from django.core.management import call_command
from django.db import connections
from django.db.models import F, IntegerField, Q
from django.db.models.expressions import RawSQL
from django.test import override_settings

import tracer
from demo_app.models import Author, Book, Publisher
from tracer import stacks
from tracer.analysis.injection import InjectionRisk, risks
from tracer.playground.running import run

pytestmark = pytest.mark.django_db(databases="__all__")

HERE = __file__


def lineno() -> int:
    return sys._getframe(1).f_lineno


def test_cursor_execute_with_values_formatted_in(alias):
    with tracer.capture() as trace:
        with connections[alias].cursor() as cursor:
            line = lineno() + 3
            for name in ("bob", "o'hara"):
                quoted = name.replace("'", "''")
                cursor.execute(
                    f"SELECT id FROM demo_app_author WHERE name = '{quoted}' AND id > 5"
                )
            other = lineno() + 1
            cursor.execute(
                "SELECT name FROM demo_app_author WHERE id IN (1, 2) AND name LIKE 'b%'"
            )

    assert risks(trace) == [
        InjectionRisk(
            kind="cursor.execute",
            location=f"{HERE}:{line}",
            sql="SELECT id FROM demo_app_author WHERE name = 'bob' AND id > 5",
            literals=["'bob'", "5"],
            suggestion=(
                'cursor.execute("SELECT id FROM demo_app_author WHERE name = %s AND id > %s", '
                '["bob", 5])'
            ),
            indexes=[0, 1],
        ),
        # An IN list is taken whole, its 1 too.
        InjectionRisk(
            kind="cursor.execute",
            location=f"{HERE}:{other}",
            sql="SELECT name FROM demo_app_author WHERE id IN (1, 2) AND name LIKE 'b%'",
            literals=["1", "2", "'b%'"],
            suggestion=(
                'cursor.execute("SELECT name FROM demo_app_author WHERE id IN (%s, %s) '
                'AND name LIKE %s", [1, 2, "b%"])'
            ),
            indexes=[2],
        ),
    ]
    assert [r.count for r in risks(trace)] == [2, 1]


def test_percent_signs_left_in_the_text_are_doubled(alias):
    # The statement ran without params, so the driver sent '%' as it is; once it has
    # params, it must be written '%%'.
    sql = "SELECT id FROM demo_app_author WHERE REPLACE(name, '%', '') = 'bob'"
    with tracer.capture() as trace:
        with connections[alias].cursor() as cursor:
            cursor.execute(sql)
    [risk] = risks(trace)
    assert risk.literals == ["'bob'"]
    assert risk.suggestion == (
        "cursor.execute(\"SELECT id FROM demo_app_author WHERE REPLACE(name, '%%', '') = %s\", "
        '["bob"])'
    )


def test_named_params_stay_named(alias):
    sql = "SELECT id FROM demo_app_author WHERE name = %(name)s AND id > 5 AND id < 9"
    with tracer.capture() as trace:
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, {"name": "x", "value_1": "taken"})
    [risk] = risks(trace)
    assert risk.suggestion == (
        'cursor.execute("SELECT id FROM demo_app_author WHERE name = %(name)s '
        'AND id > %(value_2)s AND id < %(value_3)s", '
        '{"name": "x", "value_1": "taken", "value_2": 5, "value_3": 9})'
    )


def test_mysql_double_quoted_strings(settings):
    # MySQL only: elsewhere "..." is a name, not a string.
    if "mysql" in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE["mysql"])
    with tracer.capture() as trace:
        with connections["mysql"].cursor() as cursor:
            cursor.execute('SELECT id FROM demo_app_author WHERE name = "it\\"s"')
    [risk] = risks(trace)
    assert (risk.literals, risk.suggestion) == (
        ['"it\\"s"'],
        'cursor.execute("SELECT id FROM demo_app_author WHERE name = %s", [\'it"s\'])',
    )


def test_raw_queryset(alias):
    with tracer.capture() as trace:
        line = lineno() + 1
        books = Author.objects.using(alias).raw(
            "SELECT * FROM demo_app_author WHERE name = 'x' AND id = %s", [3]
        )
        list(books)
    assert risks(trace) == [
        InjectionRisk(
            kind="raw()",
            location=f"{HERE}:{line}",  # where raw() was called, not where it ran
            sql="SELECT * FROM demo_app_author WHERE name = 'x' AND id = %s",
            literals=["'x'"],
            suggestion=(
                'Author.objects.raw("SELECT * FROM demo_app_author WHERE name = %s AND id = %s", '
                '["x", 3])'
            ),
            indexes=[0],
        )
    ]


def test_extra(alias):
    with tracer.capture() as trace:
        line = lineno() + 1
        authors = Author.objects.using(alias).extra(
            select={"big": "id > 100", "named": "name = %s"},
            select_params=["bob"],
            where=["name = 'bob'", "id > %s"],
            params=[7],
        )
        authors.count()
        list(authors)
    assert risks(trace) == [
        InjectionRisk(
            kind="extra()",
            location=f"{HERE}:{line}",
            sql="id > 100\nname = 'bob'",
            literals=["100", "'bob'"],
            suggestion=(
                '.extra(select={"big": "id > %s", "named": "name = %s"}, '
                'where=["name = %s", "id > %s"], params=["bob", 7], select_params=[100, "bob"])'
            ),
            indexes=[0, 1],
        )
    ]


def test_raw_sql_expressions(alias):
    Author.objects.using(alias).create(name="bob")
    with tracer.capture() as trace:
        annotated = lineno() + 2
        list(
            Author.objects.using(alias).annotate(
                n=F("id")
                + RawSQL("SELECT COUNT(*) FROM demo_app_book WHERE price > 10", (), IntegerField())
            )
        )
        filtered = lineno() + 1
        Author.objects.using(alias).filter(
            Q(id__in=RawSQL("SELECT id FROM demo_app_author WHERE name = %s OR id = 42", ["x"]))
        ).exists()
        # No value written in.
        Author.objects.using(alias).get(id=RawSQL("SELECT MIN(id) FROM demo_app_author", ()))
    assert [(r.kind, r.location, r.literals, r.suggestion, r.indexes) for r in risks(trace)] == [
        (
            "RawSQL",
            f"{HERE}:{annotated}",
            ["10"],
            'RawSQL("SELECT COUNT(*) FROM demo_app_book WHERE price > %s", (10,))',
            [0],
        ),
        (
            "RawSQL",
            f"{HERE}:{filtered}",
            ["42"],
            'RawSQL("SELECT id FROM demo_app_author WHERE name = %s OR id = %s", ["x", 42])',
            [1],
        ),
    ]


def test_raw_sql_in_the_trigger_arguments(alias):
    Author.objects.using(alias).create(name="bob")
    with tracer.capture() as trace:
        line = lineno() + 1
        Author.objects.using(alias).get(
            id=RawSQL("SELECT MIN(id) FROM demo_app_author WHERE name = 'bob'", ())
        )
    [risk] = risks(trace)
    assert (risk.kind, risk.location, risk.suggestion) == (
        "RawSQL",
        f"{HERE}:{line}",
        'RawSQL("SELECT MIN(id) FROM demo_app_author WHERE name = %s", ("bob",))',
    )


def test_values_of_secret_columns_are_not_shown(alias):
    with tracer.capture() as trace:
        with connections[alias].cursor() as cursor:
            cursor.execute("UPDATE auth_user SET password = 'hunter2' WHERE username = 'ann'")
    [risk] = risks(trace)
    assert (risk.sql, risk.literals, risk.suggestion) == (
        "UPDATE auth_user SET password = '********' WHERE username = 'ann'",
        ["'********'", "'ann'"],
        'cursor.execute("UPDATE auth_user SET password = %s WHERE username = %s", '
        '["********", "ann"])',
    )


def test_safe_sql_is_not_flagged(alias):
    ann = Author.objects.using(alias).create(name="Ann")
    pub = Publisher.objects.using(alias).create(name="Pub")
    with tracer.capture() as trace:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.execute("SELECT COUNT(*) FROM demo_app_author WHERE id > 0 LIMIT 10")
            cursor.execute("SELECT id FROM demo_app_author WHERE name = %s AND id > %s", ["x", 5])
            cursor.execute(
                "SELECT COALESCE(name, ''), UPPER('x') FROM demo_app_author WHERE id = 1"
            )
            cursor.executemany("UPDATE demo_app_author SET name = %s WHERE id = %s", [("a", 0)])
        list(Author.objects.using(alias).raw("SELECT * FROM demo_app_author WHERE id = %s", [1]))
        list(Author.objects.using(alias).extra(where=["name = %s"], params=["Ann"]))
        list(Author.objects.using(alias).annotate(n=RawSQL("SELECT %s", ("x",))))
        Book.objects.using(alias).create(
            title="It's 10% off", author=ann, publisher=pub, price=42, published="2020-01-01"
        )
        Book.objects.using(alias).filter(title__contains="10%", price__gt=42).update(price=43)
        connections[alias].introspection.table_names()
    assert len(trace.statements) == 11
    assert risks(trace) == []


def test_sql_run_without_a_frame_of_user_code_is_not_flagged(alias):
    # With the tests counted as library code, nothing on the stack is the user's.
    paths = [*stacks.default_library_paths(), os.path.dirname(os.path.dirname(HERE))]
    with override_settings(TRACER={"LIBRARY_PATHS": paths}):
        with tracer.capture() as trace:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT id FROM demo_app_author WHERE name = 'bob'")
    [statement] = trace.statements
    assert statement.stack is None
    assert risks(trace) == []


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_migrations_and_ddl_are_not_flagged(alias):
    # In a transaction=True test: DDL commits on MySQL.
    call_command("migrate", "migrated_app", "zero", database=alias, verbosity=0)
    try:
        with tracer.capture() as trace:
            call_command("migrate", "migrated_app", database=alias, verbosity=0)
            call_command("migrate", "migrated_app", "zero", database=alias, verbosity=0)
            with connections[alias].cursor() as cursor:
                cursor.execute("CREATE TABLE injection_tmp (id integer DEFAULT 42)")
                cursor.execute("DROP TABLE injection_tmp")
    finally:
        call_command("migrate", "migrated_app", database=alias, verbosity=0)
    assert any(str(s.sql).startswith("CREATE TABLE") for s in trace.statements)
    assert risks(trace) == []


def test_a_playground_run_is_analysed(alias):
    # The playground records the calls of the expression it built without a code
    # object (nobody's code made them): the analysis once raised on them.
    result = run(
        'Book.objects.filter(price__lt=20).select_related("author").order_by("-published")[:10]',
        alias,
        app="demo_app",
    )

    assert result.trace["findings"]["failed"] == []
    assert result.trace["findings"]["injection"] == []
