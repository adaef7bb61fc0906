"""Query budgets for tests: tracer.testing's context managers and unittest mixin."""

from __future__ import annotations

import datetime
import sys
import unittest
from decimal import Decimal

import pytest

from demo_app.models import Author, Book, Publisher
from tracer.testing import (
    TracerAssertionsMixin,
    assert_max_queries,
    assert_no_duplicates,
    assert_no_n_plus_one,
    assert_num_queries,
)

pytestmark = pytest.mark.django_db

#: This file as failures show it: relative to the project (the current directory).
SHOWN = "tests/test_testing.py"


def lineno() -> int:
    return sys._getframe(1).f_lineno


@pytest.fixture
def books() -> list[Book]:
    publisher = Publisher.objects.create(name="P")
    authors = [Author.objects.create(name=n) for n in ("Ann", "Bob")]
    return [
        Book.objects.create(
            title=f"B{i}",
            author=authors[i % 2],
            publisher=publisher,
            price=Decimal(10),
            published=datetime.date(2020, 1, 1),
        )
        for i in range(3)
    ]


def test_within_budget_passes_and_gives_the_trace(books):
    with assert_max_queries(1) as trace:
        list(Book.objects.select_related("author"))
    assert len(trace.statements) == 1
    with assert_num_queries(1):
        Book.objects.count()


def test_over_budget_lists_each_query_with_its_location_and_the_n_plus_one(books):
    with pytest.raises(AssertionError) as info:
        with assert_max_queries(2):
            loaded = lineno() + 1
            for book in Book.objects.order_by("id"):
                line = lineno() + 1
                book.author.name  # noqa: B018

    select = (
        'SELECT "demo_app_book"."id", "demo_app_book"."title", "demo_app_book"."author_id", '
        '"demo_app_book"."publisher_id", "demo_app_book"."price", "demo_app_book"."published" '
        'FROM "demo_app_book" ORDER BY "demo_app_book"."id" ASC'
    )
    author = (
        'SELECT "demo_app_author"."id", "demo_app_author"."name" FROM "demo_app_author" '
        'WHERE "demo_app_author"."id" = %s LIMIT 21'
    )
    lazy = "".join(f"\n  {i}. {author}\n     at {SHOWN}:{line}" for i in (2, 3, 4))
    assert str(info.value) == (
        f"4 queries ran, at most 2 expected:\n  1. {select}\n     at {SHOWN}:{loaded}{lazy}\n"
        "Among them:\n"
        "- 3 queries (a foreign key or one-to-one loaded for each instance: Book.author) for "
        f"3 instances at {SHOWN}:{line}, loaded at {SHOWN}:{loaded} by "
        "Book.objects.order_by('id'). Join them into the query that loads the instances: "
        "add .select_related('author').\n"
        "  Fix: Book.objects.order_by('id').select_related('author')" + lazy
    )


def test_num_queries_counts_one_alias(books):
    with assert_num_queries(0, using="postgresql"):
        Book.objects.count()
    with pytest.raises(AssertionError, match="^1 queries ran, 2 expected on 'default':"):
        with assert_num_queries(2, using="default"):
            Book.objects.count()


def test_no_n_plus_one(books):
    with assert_no_n_plus_one():
        [b.author.name for b in Book.objects.select_related("author")]
    with pytest.raises(AssertionError, match=r"^1 N\+1 found:\n- 3 queries \(a foreign key"):
        with assert_no_n_plus_one():
            [b.author.name for b in Book.objects.all()]


def test_no_duplicates(books):
    with assert_no_duplicates():
        Book.objects.count()
    with pytest.raises(AssertionError, match=r"^1 duplicated statements:\n- ran 2 times: SELECT"):
        with assert_no_duplicates():
            Book.objects.count()
            Book.objects.count()


class MixinTests(TracerAssertionsMixin, unittest.TestCase):
    def test_methods_are_the_context_managers(self):
        with self.assertMaxQueries(0) as trace:
            pass
        self.assertEqual(trace.statements, [])
        with self.assertRaisesRegex(AssertionError, "^1 queries ran, at most 0 expected"):
            with self.assertMaxQueries(0):
                Book.objects.exists()
        with self.assertNumQueriesTraced(1), self.assertNoNPlusOne():
            Book.objects.exists()
        with self.assertRaisesRegex(AssertionError, "duplicated"):
            with self.assertNoDuplicateQueries():
                Book.objects.exists()
                Book.objects.exists()


@pytest.mark.django_db
def test_mixin_in_a_django_test_case(books):
    result = unittest.TestResult()
    MixinTests("test_methods_are_the_context_managers").run(result)
    assert (result.errors, result.failures, result.testsRun) == ([], [], 1)
