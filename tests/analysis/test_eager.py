"""Unused eager loading: prefetches and select_related paths nothing read."""

from __future__ import annotations

import copy
import datetime
import pickle
import sys
from decimal import Decimal

import pytest
from django.template import engines

import tracer
from demo_app.models import Author, Book, Publisher, Review, Tag
from tracer import recorder
from tracer.analysis.eager import unused_prefetches, unused_select_related

pytestmark = pytest.mark.django_db(databases="__all__")

HERE = __file__


def lineno() -> int:
    return sys._getframe(1).f_lineno


@pytest.fixture(autouse=True)
def shelf(request: pytest.FixtureRequest) -> None:
    """Two authors, one publisher, four books with a tag and a review each, on the
    test's engine (its ``alias`` fixture) or the default database."""
    using = request.getfixturevalue("alias") if "alias" in request.fixturenames else "default"
    publisher = Publisher.objects.using(using).create(name="P")
    authors = [Author.objects.using(using).create(name=n) for n in ("Ann", "Bob")]
    tag = Tag.objects.using(using).create(name="t")
    for i in range(4):
        book = Book.objects.using(using).create(
            title=f"B{i}",
            author=authors[i % 2],
            publisher=publisher,
            price=Decimal(i + 1),
            published=datetime.date(2020, 1, 1),
        )
        book.tags.add(tag)
        Review.objects.using(using).create(book=book, rating=i, text="ok")


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


# Single-valued prefetches ------------------------------------------------------------


def test_a_single_valued_prefetch_nothing_read():
    with tracer.capture() as trace:
        line = lineno() + 1
        titles = [b.title for b in Book.objects.order_by("id").prefetch_related("author")]

    assert len(titles) == 4
    (found,) = unused_prefetches(trace)
    assert (found.lookup, found.queries, found.rows, found.operation) == ("author", 1, 2, 1)
    assert found.location == f"{HERE}:{line}"
    assert found.code == "Book.objects.order_by('id').prefetch_related('author')"
    assert found.fix == (
        "Nothing read the 'author' it loaded: drop .prefetch_related('author'), or read it "
        "through the prefetch (instance.author, not a new query)."
    )


def test_a_single_valued_prefetch_read_in_python_or_a_template():
    with tracer.capture() as trace:
        books = list(Book.objects.prefetch_related("author", "publisher"))
        books[-1].author.name  # noqa: B018
        html = (
            engines["django"].from_string("{{ book.publisher.name }}").render({"book": books[0]})
        )

    assert (html, len(trace.statements)) == ("P", 3)
    assert unused_prefetches(trace) == []


def test_a_single_valued_prefetch_under_a_nested_lookup():
    with tracer.capture() as trace:
        reviews = list(Review.objects.order_by("id").prefetch_related("book__author"))
        reviews[0].book.title  # noqa: B018  (book read, its author never)

    assert [(f.lookup, f.rows) for f in unused_prefetches(trace)] == [("book__author", 2)]


# select_related -------------------------------------------------------------------------


def test_a_select_related_nothing_read(alias):
    with tracer.capture() as trace:
        line = lineno() + 1
        books = Book.objects.using(alias).select_related("author").order_by("id")
        titles = [book.title for book in books]

    assert titles == ["B0", "B1", "B2", "B3"]
    code = f"Book.objects.using({alias!r}).select_related('author').order_by('id')"
    (found,) = unused_select_related(trace)
    assert (found.lookup, found.rows, found.operation) == ("author", 4, 0)
    assert found.location == f"{HERE}:{line + 1}"
    assert found.code == code
    assert found.fix == "Nothing read the 'author' it joined: drop the .select_related()."
    assert found.fixed_code == f"Book.objects.using({alias!r}).order_by('id')"
    assert trace.operations[0].selected == {"author": False}


def test_a_select_related_read_in_python(alias):
    with tracer.capture() as trace:
        books = list(Book.objects.using(alias).select_related("author", "publisher"))
        books[2].author.name  # noqa: B018  (one read is enough)
        books[3].publisher  # noqa: B018

    assert len(trace.statements) == 1
    assert unused_select_related(trace) == []
    assert trace.operations[0].selected == {"author": True, "publisher": True}


def test_a_select_related_read_in_a_template(alias):
    template = engines["django"].from_string(
        "{% for b in books %}{{ b.author.name }} {% endfor %}"
    )
    with tracer.capture() as trace:
        books = Book.objects.using(alias).select_related("author", "publisher").order_by("id")
        html = template.render({"books": books})

    assert html == "Ann Bob Ann Bob "
    code = f"Book.objects.using({alias!r}).select_related('author', 'publisher').order_by('id')"
    (found,) = unused_select_related(trace)
    assert (found.lookup, found.code, found.rows) == ("publisher", code, 4)
    assert found.location.endswith(":1")  # the template's line
    assert found.fix == (
        "Nothing read the 'publisher' it joined: join only what was read, "
        ".select_related('author')."
    )
    assert found.fixed_code == (
        f"Book.objects.using({alias!r}).select_related('author').order_by('id')"
    )


def test_a_nested_path_read_through(alias):
    with tracer.capture() as trace:
        reviews = list(Review.objects.using(alias).select_related("book__author"))
        [review.book.author.name for review in reviews]

    assert trace.operations[0].selected == {"book": True, "book__author": True}
    assert unused_select_related(trace) == []


def test_a_nested_path_partly_unused(alias):
    with tracer.capture() as trace:
        reviews = Review.objects.using(alias).select_related("book__author").order_by("id")
        titles = [review.book.title for review in reviews]

    assert len(titles) == 4
    (found,) = unused_select_related(trace)
    assert (found.lookup, found.rows) == ("book__author", 4)
    assert found.fix == (
        "Nothing read the 'book__author' it joined: join only what was read, "
        ".select_related('book')."
    )
    assert found.fixed_code == (
        f"Review.objects.using({alias!r}).select_related('book').order_by('id')"
    )


def test_a_nested_path_nothing_read_is_one_finding_from_its_top(alias):
    with tracer.capture() as trace:
        reviews = list(
            Review.objects.using(alias).select_related("book__author", "book__publisher")
        )

    assert len(reviews) == 4
    (found,) = unused_select_related(trace)
    assert found.lookup == "book"
    assert (
        found.fix
        == "Nothing read the 'book' it joined (nor below it): drop the .select_related()."
    )
    assert found.fixed_code == f"Review.objects.using({alias!r})"
    assert trace.operations[0].selected == {
        "book": False,
        "book__author": False,
        "book__publisher": False,
    }


def test_a_get_with_select_related(alias):
    pk = Book.objects.using(alias).order_by("id").values_list("pk", flat=True)[0]
    with tracer.capture() as trace:
        line = lineno() + 1
        book = Book.objects.using(alias).select_related("author", "publisher").get(pk=pk)
        book.publisher.name  # noqa: B018

    (found,) = unused_select_related(trace)
    assert (found.lookup, found.rows, found.location) == ("author", 1, f"{HERE}:{line}")
    assert found.fixed_code == f"Book.objects.using({alias!r}).select_related('publisher')"


def test_an_evaluation_only_counted_is_unused():
    # len() fetched every row with its author, and nothing read one: dropping the
    # join costs nothing (and .count() would fetch no rows at all).
    with tracer.capture() as trace:
        assert len(Book.objects.select_related("author")) == 4

    assert [(f.lookup, f.rows) for f in unused_select_related(trace)] == [("author", 4)]


def test_an_evaluation_older_than_the_window_is_not_judged(monkeypatch):
    monkeypatch.setattr(recorder, "HOLD_RECENT", 2)
    with tracer.capture() as trace:
        first = list(Book.objects.select_related("author").order_by("id"))
        pages = [list(Book.objects.select_related("publisher").filter(pk=b.pk)) for b in first]
        for page in pages:
            page[0].publisher.name  # noqa: B018
        first[0].author  # noqa: B018  (read, but no longer watched: not seen)

    assert [op.selected for op in trace.operations] == [
        {"author": None},  # released unread: cannot be told
        {"publisher": None},
        {"publisher": None},
        {"publisher": True},
        {"publisher": True},
    ]
    assert unused_select_related(trace) == []


def test_reads_by_the_orm_itself_do_not_count():
    with tracer.capture() as trace:
        books = list(Book.objects.select_related("author").prefetch_related("author__books"))

    assert len(books) == 4
    assert [f.lookup for f in unused_select_related(trace)] == ["author"]
    assert [f.lookup for f in unused_prefetches(trace)] == ["author__books"]


@pytest.mark.parametrize(
    "leave",
    [lambda books: copy.deepcopy(books[0]), lambda books: pickle.dumps(books[1:])],
    ids=["deepcopy", "pickle"],
)
def test_instances_leaving_as_copies_are_not_judged(leave):
    # A copy's objects may be read where the tracer cannot see (a cache, another
    # process): what the evaluation did not read by then cannot be told.
    with tracer.capture() as trace:
        books = list(Book.objects.select_related("author", "publisher"))
        books[0].publisher.name  # noqa: B018
        leave(books)

    assert trace.operations[0].selected == {"author": None, "publisher": True}
    assert unused_select_related(trace) == []


def test_a_related_object_read_through_another_instance_counts():
    with tracer.capture() as trace:
        books = list(Book.objects.select_related("author"))
        other = Book(title="x", author=books[0].__dict__["_state"].fields_cache["author"])
        other.author.name  # noqa: B018  (the same author object, read)

    assert trace.operations[0].selected == {"author": True}


def test_select_related_without_fields_joins_every_non_null_foreign_key():
    with tracer.capture() as trace:
        reviews = list(Review.objects.select_related().order_by("id"))
        reviews[0].book.author.name  # noqa: B018

    review = reviews[0]
    # As Django cached them: the plan follows what select_related() joined.
    assert list(review._state.fields_cache) == ["book"]
    assert list(review.book._state.fields_cache) == ["author", "publisher"]
    assert trace.operations[0].selected == {
        "book": True,
        "book__author": True,
        "book__publisher": False,
    }
    (found,) = unused_select_related(trace)
    assert found.lookup == "book__publisher"
    assert found.fixed_code == "Review.objects.select_related('book__author').order_by('id')"


def test_reverse_one_to_one():
    from tests.testapp.models import Author as Writer
    from tests.testapp.models import Profile

    for name in ("Ann", "Bob"):
        Profile.objects.create(author=Writer.objects.create(name=name), bio=name)
    Writer.objects.create(name="Cy")  # no profile
    with tracer.capture() as trace:
        unread = list(Writer.objects.select_related("profile").order_by("id"))
        read = list(Writer.objects.select_related("profile").order_by("id"))
        # The missing one raises from the cache: a read all the same.
        assert not hasattr(read[2], "profile")

    assert len(unread) == 3
    assert [(f.lookup, f.operation) for f in unused_select_related(trace)] == [("profile", 0)]
    with tracer.capture() as trace:
        profiles = list(Profile.objects.select_related("author"))
        [p.author.profile.bio for p in profiles]  # noqa: B018
    assert unused_select_related(trace) == []


def test_a_prefetch_queryset_with_select_related():
    from django.db.models import Prefetch

    with tracer.capture() as trace:
        line = lineno() + 1
        authors = list(
            Author.objects.prefetch_related(
                Prefetch("books", queryset=Book.objects.select_related("publisher"))
            )
        )
        [book.title for book in authors[0].books.all()]

    (found,) = unused_select_related(trace)
    assert (found.lookup, found.rows, found.location) == ("publisher", 4, f"{HERE}:{line}")
    assert found.code == "Book.objects.select_related('publisher')"
    assert found.fixed_code == "Book.objects"
    assert unused_prefetches(trace) == []


def test_a_nested_capture_hands_its_watch_to_the_outer_one():
    with tracer.capture() as outer:
        with tracer.capture() as inner:
            books = list(Book.objects.select_related("author"))
        assert [f.lookup for f in unused_select_related(inner)] == ["author"]
        books[0].author  # noqa: B018

    assert unused_select_related(outer) == []


def test_a_trace_still_recording_is_not_judged():
    with tracer.capture() as trace:
        list(Book.objects.select_related("author"))
        assert unused_select_related(trace) == []
    assert [f.lookup for f in unused_select_related(trace)] == ["author"]


def test_a_finished_trace_watches_nothing_and_holds_nothing():
    import gc
    import weakref

    with tracer.capture() as trace:
        books = list(Book.objects.select_related("author").prefetch_related("publisher"))
        assert trace._watch is not None and recorder.watches() == 1
    assert (trace._watch, recorder.watches()) == (None, 0)
    book = weakref.ref(books[0])
    author = weakref.ref(books[0].author)
    del books
    gc.collect()
    assert (book(), author()) == (None, None)


def test_findings_list_both_kinds_in_the_order_they_ran():
    with tracer.capture() as trace:
        list(Book.objects.order_by("id").select_related("author").prefetch_related("tags"))

    assert [
        (item["kind"], item["lookup"]) for item in trace.to_dict()["findings"]["unused_eager"]
    ] == [
        ("select_related", "author"),
        ("prefetch_related", "tags"),
    ]
    item = trace.to_dict()["findings"]["unused_eager"][0]
    assert sorted(item) == [
        "code",
        "fix",
        "fixed_code",
        "kind",
        "location",
        "lookup",
        "operation",
        "rows",
    ]


def test_a_filtered_relation_path_is_not_judged():
    from django.db.models import FilteredRelation, Q

    with tracer.capture() as trace:
        books = list(
            Book.objects.annotate(ann=FilteredRelation("author", condition=Q(author__name="Ann")))
            .select_related("ann", "publisher")
            .order_by("id")
        )

    # Django sets it as a plain attribute, which no descriptor reads.
    assert books[0].ann.name == "Ann"
    assert trace.operations[0].selected == {"publisher": False}
    assert [f.lookup for f in unused_select_related(trace)] == ["publisher"]


def test_an_evaluation_past_hold_max_is_not_watched(monkeypatch):
    monkeypatch.setattr(recorder, "HOLD_MAX", 3)
    with tracer.capture() as trace:
        list(Book.objects.select_related("author"))  # 4 instances
        list(Book.objects.select_related("author")[:3])

    assert [op.selected for op in trace.operations] == [None, {"author": False}]
    assert [f.operation for f in unused_select_related(trace)] == [1]
