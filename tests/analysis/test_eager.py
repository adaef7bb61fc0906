"""Unused eager loading: prefetches nothing read."""

from __future__ import annotations

import datetime
import sys
from decimal import Decimal

import pytest
from django.template import engines

import tracer
from demo_app.models import Author, Book, Publisher, Tag
from tracer.analysis.eager import unused_prefetches

pytestmark = pytest.mark.django_db

HERE = __file__


def lineno() -> int:
    return sys._getframe(1).f_lineno


@pytest.fixture(autouse=True)
def shelf() -> None:
    publisher = Publisher.objects.create(name="P")
    authors = [Author.objects.create(name=n) for n in ("Ann", "Bob")]
    tag = Tag.objects.create(name="t")
    for i in range(4):
        book = Book.objects.create(
            title=f"B{i}",
            author=authors[i % 2],
            publisher=publisher,
            price=Decimal(i + 1),
            published=datetime.date(2020, 1, 1),
        )
        book.tags.add(tag)


def test_a_prefetch_nothing_read():
    with tracer.capture() as trace:
        line = lineno() + 1
        names = [a.name for a in Author.objects.order_by("id").prefetch_related("books")]

    assert names == ["Ann", "Bob"]
    (found,) = unused_prefetches(trace)
    assert (found.lookup, found.queries, found.rows, found.operation) == ("books", 1, 4, 1)
    assert found.location == f"{HERE}:{line}"
    assert found.code == "Author.objects.order_by('id').prefetch_related('books')"
    assert found.fix == (
        "Nothing read the 'books' it loaded: drop .prefetch_related('books'), or read it "
        "through the prefetch (instance.books.all(), not a new filter())."
    )


@pytest.mark.parametrize(
    "read",
    [
        lambda author: list(author.books.all()),
        lambda author: len(author.books.all()),
        lambda author: author.books.count(),
        lambda author: author.books.all()[0],
        lambda author: bool(author.books.all()),
    ],
    ids=["iteration", "len", "count", "index", "bool"],
)
def test_reading_one_of_them_is_using_it(read):
    with tracer.capture() as trace:
        authors = list(Author.objects.prefetch_related("books"))
        read(authors[0])

    assert len(trace.statements) == 2
    assert unused_prefetches(trace) == []


def test_reading_in_a_template_is_using_it():
    template = engines["django"].from_string(
        "{% for a in authors %}{% for b in a.books.all %}{{ b.title }}{% endfor %}{% endfor %}"
    )
    with tracer.capture() as trace:
        html = template.render({"authors": Author.objects.prefetch_related("books")})

    assert html == "B0B2B1B3"
    assert unused_prefetches(trace) == []


def test_a_new_filter_instead_of_the_prefetch_leaves_it_unused():
    with tracer.capture() as trace:
        for author in Author.objects.prefetch_related("books"):
            list(author.books.filter(price__gt=1))

    assert len(trace.statements) == 4
    assert [found.lookup for found in unused_prefetches(trace)] == ["books"]


def test_nested_prefetch_reads_by_the_orm_do_not_count():
    with tracer.capture() as trace:
        [a.name for a in Author.objects.prefetch_related("books__tags")]

    assert [(f.lookup, f.rows) for f in unused_prefetches(trace)] == [
        ("books", 4),
        ("books__tags", 4),
    ]
    with tracer.capture() as trace:
        for author in Author.objects.prefetch_related("books__tags"):
            for book in author.books.all():
                list(book.tags.all())
    assert unused_prefetches(trace) == []


def test_single_valued_prefetches_are_not_judged():
    with tracer.capture() as trace:
        list(Book.objects.prefetch_related("author"))

    assert len(trace.statements) == 2
    assert unused_prefetches(trace) == []
