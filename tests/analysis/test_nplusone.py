"""N+1 detection on real traces: each lazy-load kind, its fix, and what is not an N+1."""

from __future__ import annotations

import datetime
import gc
import sys
import weakref
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Count, Prefetch, Q
from django.template import engines

import tracer
from demo_app.models import Author, Book, Publisher, Review, Tag
from tracer import recorder
from tracer.analysis.nplusone import NPlusOne, n_plus_ones

pytestmark = pytest.mark.django_db(databases="__all__")

HERE = __file__


#: This file as people read it: relative to the project (the current directory).
SHOWN = "tests/analysis/test_nplusone.py"


def lineno() -> int:
    return sys._getframe(1).f_lineno


def at(line: int) -> str:
    return f"{HERE}:{line}"


@pytest.fixture
def shelf(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Three authors, two publishers, five books (prices 5 to 25), a review each,
    and a tag on the first two books."""
    alias = getattr(request, "param", "default")
    authors = [Author.objects.using(alias).create(name=n) for n in ("Ann", "Bob", "Cy")]
    publishers = [Publisher.objects.using(alias).create(name=n) for n in ("P1", "P2")]
    books = [
        Book.objects.using(alias).create(
            title=f"Book {i}",
            author=authors[i % 3],
            publisher=publishers[i % 2],
            price=Decimal(5 * (i + 1)),
            published=datetime.date(2020, i + 1, 1),
        )
        for i in range(5)
    ]
    for book in books:
        Review.objects.using(alias).create(book=book, rating=4, text="Fine")
    tag = Tag.objects.using(alias).create(name="classic")
    for book in books[:2]:
        book.tags.add(tag)
    return {"alias": alias, "authors": authors, "books": books}


def only(found: list[NPlusOne]) -> NPlusOne:
    assert len(found) == 1, found
    return found[0]


# Forward relations -----------------------------------------------------------------------


@pytest.mark.parametrize("shelf", ["default", "postgresql", "mysql"], indirect=True)
def test_foreign_key_in_a_loop(shelf):
    alias = shelf["alias"]
    with tracer.capture() as trace:
        loaded = lineno() + 1
        for book in Book.objects.using(alias).order_by("id"):
            line = lineno() + 1
            book.author.name  # noqa: B018

    found = only(n_plus_ones(trace))
    code = f"Book.objects.using({alias!r}).order_by('id')"
    assert found.kind == "forward"
    assert found.relation == "Book.author"
    assert (found.queries, found.instances) == (5, 5)
    assert found.location == at(line)
    assert found.loaded_at == at(loaded)
    assert found.loaded_code == code
    assert found.fix == ".select_related('author')"
    assert found.fixed_code == code + ".select_related('author')"
    assert found.operations == [1, 2, 3, 4, 5]
    assert found.statements == [1, 2, 3, 4, 5]
    assert found.db_ns == sum((s.duration_ns or 0) + s.fetch_ns for s in trace.statements[1:])
    assert found.duration_ns == sum(op.duration_ns for op in trace.operations[1:])
    assert found.explanation == (
        "5 queries (a foreign key or one-to-one loaded for each instance: Book.author) "
        f"for 5 instances at {SHOWN}:{line}, loaded at {SHOWN}:{loaded} by {code}. Join them "
        "into the query that loads the instances: add .select_related('author')."
    )


def test_the_fix_goes_before_a_slice(shelf):
    with tracer.capture() as trace:
        for book in Book.objects.filter(price__gt=1).order_by("id")[:3]:
            book.author.name  # noqa: B018

    found = only(n_plus_ones(trace))
    assert found.fixed_code == (
        "Book.objects.filter(price__gt=1).order_by('id').select_related('author')[:3]"
    )


def test_select_related_is_no_n_plus_one(shelf):
    with tracer.capture() as trace:
        names = [b.author.name for b in Book.objects.select_related("author")]

    assert len(names) == 5
    assert len(trace.statements) == 1
    assert n_plus_ones(trace) == []


def test_one_instance_touching_its_relation_is_no_n_plus_one(shelf):
    with tracer.capture() as trace:
        book = Book.objects.order_by("id").first()
        book.author.name  # noqa: B018
        book.author.name  # noqa: B018  (cached: no query)
        books = list(Book.objects.order_by("id")[:2])
        books[0].author.name  # noqa: B018

    assert len(trace.statements) == 4
    assert n_plus_ones(trace) == []


def test_empty_result_is_no_n_plus_one(shelf):
    with tracer.capture() as trace:
        for book in Book.objects.filter(price__gt=1000):
            book.author.name  # noqa: B018

    assert len(trace.statements) == 1
    assert n_plus_ones(trace) == []


def test_minimum_is_a_parameter_and_a_setting(shelf, settings):
    with tracer.capture() as trace:
        for book in Book.objects.order_by("id")[:3]:
            book.author.name  # noqa: B018

    assert only(n_plus_ones(trace)).instances == 3
    assert n_plus_ones(trace, minimum=4) == []
    settings.TRACER = {"N_PLUS_ONE_MIN": 4}
    assert n_plus_ones(trace) == []


def test_two_hops_give_the_whole_path(shelf):
    with tracer.capture() as trace:
        loaded = lineno() + 1
        for review in Review.objects.order_by("id"):
            line = lineno() + 1
            review.book.author.name  # noqa: B018

    by_relation = {found.relation: found for found in n_plus_ones(trace)}
    assert sorted(by_relation) == ["Book.author", "Review.book"]
    book, author = by_relation["Review.book"], by_relation["Book.author"]
    assert (book.queries, book.instances, book.location) == (5, 5, at(line))
    assert book.fix == ".select_related('book')"
    # The books came one by one from review.book: the fix belongs on the reviews.
    assert (author.queries, author.instances, author.loaded_at) == (5, 5, at(loaded))
    assert author.fix == ".select_related('book__author')"
    assert author.fixed_code == "Review.objects.order_by('id').select_related('book__author')"


def test_instances_a_prefetch_loaded_extend_its_lookup(shelf):
    with tracer.capture() as trace:
        loaded = lineno() + 1
        for author in Author.objects.order_by("id").prefetch_related("books"):
            for book in author.books.all():
                book.publisher.name  # noqa: B018

    found = only(n_plus_ones(trace))
    assert (found.relation, found.queries, found.instances) == ("Book.publisher", 5, 5)
    assert found.loaded_at == at(loaded)
    assert found.fix == ".prefetch_related('books__publisher')"
    assert found.fixed_code == (
        "Author.objects.order_by('id').prefetch_related('books')"
        ".prefetch_related('books__publisher')"
    )


def test_template_loop(shelf):
    template = engines["django"].from_string(
        "{% for book in books %}\n{{ book.author.name }}\n{% endfor %}"
    )
    with tracer.capture() as trace:
        template.render({"books": Book.objects.order_by("id")})

    found = only(n_plus_ones(trace))
    assert found.relation == "Book.author"
    assert found.location == "<unknown source>:2"
    assert found.loaded_at == "<unknown source>:1"


# Many-valued relations -----------------------------------------------------------------


def test_reverse_foreign_key_manager_in_a_loop(shelf):
    with tracer.capture() as trace:
        for author in Author.objects.order_by("name"):
            list(author.books.all())

    found = only(n_plus_ones(trace))
    assert (found.kind, found.relation) == ("many", "Author.books")
    assert (found.queries, found.instances) == (3, 3)
    assert found.fix == ".prefetch_related('books')"
    assert found.fixed_code == "Author.objects.order_by('name').prefetch_related('books')"


def test_many_to_many_manager_in_a_loop(shelf):
    with tracer.capture() as trace:
        for book in Book.objects.all():
            [tag.name for tag in book.tags.all()]

    found = only(n_plus_ones(trace))
    assert (found.kind, found.relation, found.queries) == ("many", "Book.tags", 5)
    assert found.fixed_code == "Book.objects.prefetch_related('tags')"


def test_filter_in_the_loop_needs_a_prefetch_object(shelf):
    with tracer.capture() as trace:
        for author in Author.objects.all():
            list(author.books.filter(price__lt=20))

    found = only(n_plus_ones(trace))
    assert found.fix == (
        ".prefetch_related(Prefetch('books', queryset=Book.objects.filter(price__lt=20), "
        "to_attr='books_list'))"
    )
    # The suggested code does what the loop did, in two queries.
    with tracer.capture() as fixed:
        authors = list(
            Author.objects.all().prefetch_related(
                Prefetch("books", queryset=Book.objects.filter(price__lt=20), to_attr="books_list")
            )
        )
    assert len(fixed.statements) == 2
    assert sorted(len(a.books_list) for a in authors) == [1, 1, 1]


def test_count_in_a_loop_is_an_annotation(shelf):
    with tracer.capture() as trace:
        counts = [author.books.count() for author in Author.objects.order_by("id")]
        cheap = [a.books.filter(price__lt=20).count() for a in Author.objects.order_by("id")]

    first, second = n_plus_ones(trace)
    assert (first.kind, first.relation, first.queries) == ("count", "Author.books", 3)
    assert first.fix == ".annotate(books_count=Count('books'))"
    assert second.fix == ".annotate(books_count=Count('books', filter=Q(books__price__lt=20)))"
    # The suggestions give the same numbers.
    annotated = Author.objects.order_by("id").annotate(
        books_count=Count("books"), cheap=Count("books", filter=Q(books__price__lt=20))
    )
    assert [a.books_count for a in annotated] == counts
    assert [a.cheap for a in annotated] == cheap


@pytest.mark.parametrize("shelf", ["default", "postgresql", "mysql"], indirect=True)
def test_many_to_many_count_in_a_loop(shelf):
    # ManyRelatedManager.count() and .exists() query the through table alone, through
    # its model's base manager: still a load per instance of that relation.
    alias = shelf["alias"]
    for name in ("modern", "rare"):
        Tag.objects.using(alias).create(name=name)
    with tracer.capture() as trace:
        counts = [b.tags.count() for b in Book.objects.using(alias).order_by("id")]
        tagged = [t.books.exists() for t in Tag.objects.using(alias).order_by("id")]

    assert (counts, tagged) == ([1, 1, 0, 0, 0], [True, False, False])
    first, second = n_plus_ones(trace)
    assert (first.kind, first.relation, first.queries) == ("count", "Book.tags", 5)
    assert first.fix == ".annotate(tags_count=Count('tags'))"
    assert (second.kind, second.relation, second.queries) == ("exists", "Tag.books", 3)
    assert second.fix == ".annotate(books_count=Count('books'))"
    # The suggestions give the same answers.
    books = Book.objects.using(alias).order_by("id").annotate(tags_count=Count("tags"))
    assert [b.tags_count for b in books] == counts
    tags = Tag.objects.using(alias).order_by("id").annotate(books_count=Count("books"))
    assert [t.books_count > 0 for t in tags] == tagged


def test_relations_without_related_name(alias):
    # room.shelf_set and shelf.sticker_set: the accessor ends in _set, the query name
    # (for Count and filters) does not.
    from tests.testapp.models import Room, Shelf, Sticker

    rooms = [Room.objects.using(alias).create(name=n) for n in ("A", "B", "C")]
    shelves = [Shelf.objects.using(alias).create(room=rooms[i % 2]) for i in range(3)]
    for _ in range(2):
        Sticker.objects.using(alias).create().shelves.add(*shelves[:2])
    with tracer.capture() as trace:
        counts = [r.shelf_set.count() for r in Room.objects.using(alias).order_by("id")]
        stickered = [s.sticker_set.count() for s in Shelf.objects.using(alias).order_by("id")]
        stickers = [len(s.sticker_set.all()) for s in Shelf.objects.using(alias).order_by("id")]

    assert (counts, stickered, stickers) == ([2, 1, 0], [2, 2, 0], [2, 2, 0])
    first, second, third = n_plus_ones(trace)
    assert (first.relation, first.fix) == (
        "Room.shelf_set",
        ".annotate(shelf_set_count=Count('shelf'))",
    )
    assert (second.relation, second.fix) == (
        "Shelf.sticker_set",
        ".annotate(sticker_set_count=Count('sticker'))",
    )
    assert (third.kind, third.relation, third.fix) == (
        "many",
        "Shelf.sticker_set",
        ".prefetch_related('sticker_set')",
    )
    # The suggestions run and give the same answers.
    rooms_counted = Room.objects.using(alias).order_by("id").annotate(n=Count("shelf"))
    assert [r.n for r in rooms_counted] == counts
    in_order = Shelf.objects.using(alias).order_by("id")
    assert [s.n for s in in_order.annotate(n=Count("sticker"))] == stickered
    assert [len(s.sticker_set.all()) for s in in_order.prefetch_related("sticker_set")] == stickers


def test_exists_in_a_loop(shelf):
    with tracer.capture() as trace:
        [author.books.exists() for author in Author.objects.all()]

    found = only(n_plus_ones(trace))
    assert (found.kind, found.queries) == ("exists", 3)
    assert found.explanation.endswith(
        "Count them in the same query: add .annotate(books_count=Count('books')) and use "
        "instance.books_count > 0."
    )


def test_prefetched_relations_are_no_n_plus_one(shelf):
    with tracer.capture() as trace:
        for author in Author.objects.prefetch_related("books"):
            list(author.books.all())

    assert len(trace.statements) == 2
    assert n_plus_ones(trace) == []


def test_one_instance_asking_twice_is_a_duplicate_not_an_n_plus_one(shelf):
    author = shelf["authors"][0]
    with tracer.capture() as trace:
        list(author.books.all())
        list(author.books.all())

    assert len(trace.statements) == 2
    assert n_plus_ones(trace) == []


# Deferred fields and .get() ------------------------------------------------------------


def test_deferred_field_in_a_loop(shelf):
    with tracer.capture() as trace:
        for book in Book.objects.only("id"):
            line = lineno() + 1
            book.title  # noqa: B018

    found = only(n_plus_ones(trace))
    assert (found.kind, found.relation, found.queries) == ("deferred", "Book.title", 5)
    assert found.location == at(line)
    assert found.loaded_code == "Book.objects.only('id')"
    assert found.fix == "load 'title' with the instances"
    assert found.fixed_code is None


def test_get_in_a_loop(shelf):
    ids = [book.pk for book in shelf["books"]]
    with tracer.capture() as trace:
        for pk in ids:
            line = lineno() + 1
            Book.objects.get(pk=pk)

    found = only(n_plus_ones(trace))
    assert (found.kind, found.relation, found.queries, found.instances) == ("get", "Book", 5, 5)
    assert found.location == at(line)
    assert (found.loaded_at, found.loaded_code, found.fixed_code) == (None, None, None)
    assert found.fix == "Book.objects.in_bulk(...)"


def test_the_same_get_repeated_is_a_duplicate_not_an_n_plus_one(shelf):
    pk = shelf["books"][0].pk
    with tracer.capture() as trace:
        for _ in range(3):
            Book.objects.get(pk=pk)

    assert len(trace.statements) == 3
    assert n_plus_ones(trace) == []


# The instance stamp ------------------------------------------------------------------------


def test_a_finished_trace_holds_none_of_the_instances(shelf):
    with tracer.capture() as trace:
        books = list(Book.objects.order_by("id"))
        assert trace.operations[0].rows == books  # held while recording
    assert trace.operations[0].rows is None
    assert (list(trace._recent), trace._pinned, trace._loaded) == ([], [], {})
    book = weakref.ref(books[0])
    del books
    gc.collect()
    assert book() is None


def test_instances_held_at_most_hold_max(shelf, monkeypatch):
    monkeypatch.setattr(recorder, "HOLD_MAX", 4)
    with tracer.capture() as trace:
        for book in Book.objects.order_by("id"):
            book.author.name  # noqa: B018

    found = only(n_plus_ones(trace))
    assert (found.queries, found.loaded_at, found.fix) == (5, None, ".select_related('author')")
    assert trace.operations[0].rows is None


def test_loads_on_instances_of_an_earlier_trace_still_group(shelf):
    with tracer.capture():
        books = list(Book.objects.order_by("id"))
    with tracer.capture() as trace:
        for book in books:
            book.author.name  # noqa: B018

    found = only(n_plus_ones(trace))
    assert (found.queries, found.loaded_at, found.fix) == (5, None, ".select_related('author')")


def test_one_to_one_both_ways():
    from tests.testapp.models import Author as WriterModel
    from tests.testapp.models import Profile

    for name in ("Ann", "Bob", "Cy"):
        Profile.objects.create(author=WriterModel.objects.create(name=name), bio=name)
    with tracer.capture() as trace:
        [writer.profile.bio for writer in WriterModel.objects.order_by("id")]
        [profile.author.name for profile in Profile.objects.order_by("id")]

    reverse, forward = n_plus_ones(trace)
    assert (reverse.kind, reverse.relation, reverse.queries) == ("forward", "Author.profile", 3)
    assert reverse.fixed_code == "Author.objects.order_by('id').select_related('profile')"
    assert (forward.relation, forward.fix) == ("Profile.author", ".select_related('author')")
    # The suggestion works: one query for the same answers.
    with tracer.capture() as fixed:
        bios = [
            w.profile.bio for w in WriterModel.objects.order_by("id").select_related("profile")
        ]
    assert (bios, len(fixed.statements)) == (["Ann", "Bob", "Cy"], 1)


def test_only_recent_evaluations_are_held_unless_a_lazy_load_used_them(shelf, monkeypatch):
    monkeypatch.setattr(recorder, "HOLD_RECENT", 1)
    with tracer.capture() as trace:
        pages = [list(Book.objects.order_by("id")[i : i + 2]) for i in (0, 2)]
        assert [op.rows is not None for op in trace.operations] == [False, True]
        pages[0][0].author.name  # noqa: B018  (its evaluation was released: not known)
        assert trace.operations[2].loaded_by is None

        loaded = lineno() + 1
        for author in Author.objects.order_by("id"):
            list(author.books.order_by("id"))  # evaluations that come and go
        assert len(trace._recent) == 1
        authors = trace.operations[3]
        assert trace._pinned == [authors] and authors.rows is not None

    found = only(n_plus_ones(trace))
    assert (found.relation, found.queries, found.loaded_at) == ("Author.books", 3, at(loaded))
    assert authors.rows is None


def _books_of_each_author() -> int:
    # A function of its own: its code is specialised by this loop alone.
    for author in Author.objects.order_by("id"):
        list(author.books.filter(price__lt=20))
    return lineno() - 1


def test_a_loop_long_enough_to_be_specialised_is_one_n_plus_one():
    """Past a few iterations CPython 3.11 specialises a loop's code, after which the
    call of ``list(...)`` is made by another instruction (its PRECALL): the loads of
    one line run from two instruction offsets, and must still be one N+1."""
    publisher = Publisher.objects.create(name="P")
    for i in range(20):
        Book.objects.create(
            title=f"Book {i}",
            author=Author.objects.create(name=f"Author {i}"),
            publisher=publisher,
            price=Decimal(10),
            published=datetime.date(2020, 1, 1),
        )
    with tracer.capture() as trace:
        line = _books_of_each_author()

    found = only(n_plus_ones(trace))
    assert (found.relation, found.queries, found.instances) == ("Author.books", 20, 20)
    assert found.location == at(line)


def test_a_filtered_prefetch_takes_the_place_of_the_unread_plain_one(shelf):
    with tracer.capture() as trace:
        for author in Author.objects.prefetch_related("books").order_by("name")[:3]:
            list(author.books.filter(price__lt=20))
        for book in Book.objects.prefetch_related("tags", "reviews"):
            list(book.reviews.filter(rating__gte=4))

    found = {each.relation: each for each in n_plus_ones(trace)}
    first, second = found["Author.books"], found["Book.reviews"]
    prefetch = (
        "Prefetch('books', queryset=Book.objects.filter(price__lt=20), to_attr='books_list')"
    )
    assert first.fix == f".prefetch_related({prefetch})"
    assert first.fixed_code == f"Author.objects.order_by('name').prefetch_related({prefetch})[:3]"
    assert "in place of .prefetch_related('books'), whose results the loop never reads," in (
        first.explanation
    )
    assert second.fixed_code == (
        "Book.objects.prefetch_related('tags').prefetch_related(Prefetch('reviews', "
        "queryset=Review.objects.filter(rating__gte=4), to_attr='reviews_list'))"
    )
    # The suggested code loads what the loop read, in two queries.
    with tracer.capture() as fixed:
        authors = list(
            Author.objects.order_by("name").prefetch_related(
                Prefetch("books", queryset=Book.objects.filter(price__lt=20), to_attr="books_list")
            )[:3]
        )
    assert len(fixed.statements) == 2
    assert sorted(len(a.books_list) for a in authors) == [1, 1, 1]
