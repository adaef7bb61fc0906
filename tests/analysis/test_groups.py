"""Similar and duplicate statement groups, from real recorded traces."""

from __future__ import annotations

import sys

import pytest
from django.db import connections, transaction
from django.test import override_settings

import tracer
from demo_app.models import Author
from tracer.analysis.groups import duplicates, is_transaction_control, location_of, similar
from tracer.testing import assert_no_duplicates

pytestmark = pytest.mark.django_db(databases="__all__")

HERE = __file__


def lineno() -> int:
    return sys._getframe(1).f_lineno


def test_similar_and_duplicate_lookups(alias, vendor):
    ann = Author.objects.using(alias).create(name="Ann")
    bob = Author.objects.using(alias).create(name="Bob")
    with tracer.capture() as trace:
        line = lineno() + 2
        for pk in (ann.pk, bob.pk, ann.pk):
            Author.objects.using(alias).get(pk=pk)
        other = lineno() + 1
        Author.objects.using(alias).filter(pk__in=[ann.pk, bob.pk]).count()
        Author.objects.using(alias).filter(pk__in=[ann.pk]).count()

    [lookups, counts] = similar(trace)
    assert (lookups.count, lookups.indexes) == (3, [0, 1, 2])
    assert lookups.locations == {f"{HERE}:{line}": 3}
    shape = (
        'SELECT "demo_app_author"."id", "demo_app_author"."name" FROM "demo_app_author" '
        'WHERE "demo_app_author"."id" = ? LIMIT ?'
    )
    if vendor == "mysql":
        shape = shape.replace('"', "`")
    assert lookups.shape == shape
    assert lookups.duration_ns == sum(s.duration_ns + s.fetch_ns for s in trace.statements[:3])
    # IN lists of two values and of one are one shape.
    assert (counts.count, counts.indexes) == (2, [3, 4])
    assert counts.locations == {f"{HERE}:{other}": 1, f"{HERE}:{other + 1}": 1}
    assert "IN (...)" in counts.shape

    # Only the lookup of Ann ran twice with the same params.
    [twice] = duplicates(trace)
    assert twice.indexes == [0, 2]
    assert twice.fingerprint == lookups.fingerprint


def test_params_are_compared_by_type_and_value(connection):
    with tracer.capture() as trace:
        with connection.cursor() as cursor:
            for params in ([1], [1.0], [True], [1], ["1"]):
                cursor.execute("SELECT %s", params)

    [group] = duplicates(trace)
    assert group.indexes == [0, 3]
    assert [g.count for g in similar(trace)] == [5]


def test_statements_without_params_kept_are_never_duplicates(connection):
    with override_settings(TRACER={"SOFT_CAP": 1}):
        with tracer.capture() as trace:
            with connection.cursor() as cursor:
                for _ in range(3):
                    cursor.execute("SELECT %s", [7])

    assert [s.params for s in trace.statements][1:] == [tracer.recorder.DROPPED] * 2
    assert duplicates(trace) == []
    assert [g.count for g in similar(trace)] == [3]


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_transaction_statements_are_not_grouped(alias):
    with tracer.capture() as trace:
        for _ in range(2):
            with transaction.atomic(using=alias):
                with connections[alias].cursor() as cursor:
                    cursor.execute("SELECT 1")

    # BEGIN is a driver call on PostgreSQL and MariaDB, SQL on SQLite; COMMIT always a call.
    commits = [i for i, s in enumerate(trace.statements) if s.kind == "transaction"]
    assert [trace.statements[i].sql for i in commits].count("COMMIT") == 2
    grouped = [i for group in similar(trace, minimum=1) for i in group.indexes]
    assert not set(commits) & set(grouped)
    assert [trace.statements[i].sql for i in grouped].count("SELECT 1") == 2


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_atomic_blocks_are_not_duplicates(alias, vendor):
    with assert_no_duplicates() as trace:
        for _ in range(2):
            with transaction.atomic(using=alias):
                with transaction.atomic(using=alias):
                    pass

    texts = [s.sql for s in trace.statements if s.kind == "execute"]
    # SQLite's BEGIN is SQL text, the same each time; savepoints are SQL everywhere.
    assert texts.count("BEGIN") == (2 if vendor == "sqlite" else 0)
    marks = [t.split()[0] for t in texts if t.startswith(("SAVEPOINT", "RELEASE"))]
    assert marks == ["SAVEPOINT", "RELEASE"] * 2
    assert duplicates(trace) == []


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "  begin immediate ",
        "BEGIN DEFERRED TRANSACTION",
        "COMMIT",
        "END",
        "ROLLBACK WORK;",
        'SAVEPOINT "s1_x1"',
        'RELEASE SAVEPOINT "s1_x1"',
        "ROLLBACK TO SAVEPOINT `s1_x1`",
        "START TRANSACTION READ ONLY",
    ],
)
def test_transaction_control(sql):
    assert is_transaction_control(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "",
        "SELECT 1",
        "BEGINS",
        "BEGIN dbms_lock.sleep(1); END;",
        "SAVEPOINT x; DELETE FROM t",
        "COMMIT; DROP TABLE t",
        "UPDATE t SET begin = 1",
    ],
)
def test_not_transaction_control(sql):
    assert not is_transaction_control(sql)


def test_minimum_and_order():
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            for _ in range(2):
                cursor.execute("SELECT 2 + 2")
            for _ in range(3):
                cursor.execute("SELECT 3 * 3")

    assert [(g.shape, g.count) for g in similar(trace)] == [
        ("SELECT ? * ?", 3),
        ("SELECT ? + ?", 2),
    ]
    assert [g.count for g in similar(trace, minimum=1)] == [3, 2, 1]
    assert [g.count for g in duplicates(trace, minimum=3)] == [3]


def test_location_prefers_the_template_line():
    from django.template import engines

    Author.objects.create(name="Ann")
    template = engines["django"].from_string("{% for a in authors %}{{ a.name }}{% endfor %}")
    with tracer.capture() as trace:
        template.render({"authors": Author.objects.all()})

    [statement] = trace.statements
    assert location_of(statement) == f"{template.template.origin.name}:1"
