"""The playground's parser: what it refuses (and where it points), and that what it
accepts builds exactly the QuerySet written by hand."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections
from django.db.models import (
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Lower

from demo_app.models import Author, Book, Publisher, Review, Tag
from tests.testapp import models as testapp
from tracer.playground.parser import (
    MAX_CALLS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    PlaygroundError,
    parse,
)


def refused(text: str, app: str | None = "demo_app") -> tuple[str, str]:
    """The refusal's message and the part of the text it points at."""
    with pytest.raises(PlaygroundError) as info:
        parse(text, app=app)
    error = info.value
    assert error.text == text
    return error.message, text[error.start : error.end]


# Refusals -----------------------------------------------------------------------------

REFUSALS = [
    (
        '__import__("os")',
        "__import__: names starting with an underscore are never allowed.",
        "__import__",
    ),
    (
        'Book.objects.filter(title=open("f"))',
        "open is not allowed: names must be installed models (Author, Book, ContentType, "
        "Group, Permission, Profile, ...) or Q, F, Value, the aggregates, Prefetch and the "
        "database functions.",
        "open",
    ),
    (
        "Book.__class__",
        "__class__: attributes starting with an underscore are never allowed.",
        "__class__",
    ),
    (
        "Book.objects.all().__class__",
        "__class__: attributes starting with an underscore are never allowed.",
        "__class__",
    ),
    (
        'Book.objects.raw("SELECT * FROM demo_app_book")',
        "raw() runs SQL text.",
        ".raw",
    ),
    (
        'Book.objects.extra(where=["1=1"])',
        "extra() writes SQL text into the query.",
        ".extra",
    ),
    (
        'Book.objects.using("other")',
        "using() would pick another database: choose the database outside the expression "
        "(tracequery --database).",
        ".using",
    ),
    ("Book.objects.filter(title=lambda: 1)", "lambda functions are not allowed.", "lambda: 1"),
    (
        'Book.objects.filter(title__in=[t for t in "ab"])',
        "comprehensions are not allowed.",
        '[t for t in "ab"]',
    ),
    (
        "Book.objects.filter(pk__in=(t for t in [1]))",
        "generator expressions are not allowed.",
        "(t for t in [1])",
    ),
    (
        'Book.objects.filter(title=f"{1}")',
        "f-strings are not allowed: write a plain string.",
        'f"{1}"',
    ),
    (
        "Book.objects.filter(pk=(x := 1))",
        "assignment expressions (:=) are not allowed.",
        "x := 1",
    ),
    (
        'Book.objects.filter(*["a"])',
        "* unpacking is not allowed: write the arguments.",
        '*["a"]',
    ),
    (
        'Book.objects.filter(**{"title": "a"})',
        "** unpacking is not allowed: write the keyword arguments.",
        '**{"title": "a"}',
    ),
    (
        'Book.objects.filter(_connector="OR")',
        "_connector: keyword arguments starting with an underscore are never allowed.",
        '_connector="OR"',
    ),
    (
        'Book.objects.filter(title="".join(["a"]))',
        "join: attributes of values are not allowed (only model managers and QuerySet "
        "methods, and .asc()/.desc() of expressions).",
        "join",
    ),
    (
        "Book.objects.filter(pk=2**99999)",
        "** is only allowed between Q objects or expressions (F, Value, aggregates...); "
        "arithmetic on plain values is not evaluated: write the result.",
        "2**99999",
    ),
    (
        'Book.objects.filter(title="a" * 100000000)',
        "* is only allowed between Q objects or expressions (F, Value, aggregates...); "
        "arithmetic on plain values is not evaluated: write the result.",
        '"a" * 100000000',
    ),
    (
        "Book.objects.filter(pk=1 if 1 else 2)",
        "conditional expressions (x if y else z) are not allowed.",
        "1 if 1 else 2",
    ),
    (
        "Book.objects.filter(pk=1 < 2)",
        "comparisons are not allowed: write lookups such as price__lt=10.",
        "1 < 2",
    ),
    (
        "Book.objects.filter(Q(pk=1) or Q(pk=2))",
        "and/or are not allowed: combine Q objects with & and |.",
        "Q(pk=1) or Q(pk=2)",
    ),
    (
        "Book.objects.filter(not Q(pk=1))",
        "not is not allowed: negate a Q object with ~Q(...).",
        "not Q(pk=1)",
    ),
    ("Book.objects.filter(pk=1j)", "complex literals are not allowed.", "1j"),
    ("Book.objects.filter(pk=...)", "ellipsis literals are not allowed.", "..."),
    ("Book.objects.all() << 1", "the operator << is not allowed.", "Book.objects.all() << 1"),
    (
        "Book.objects.all()[::2]",
        "a slice with a step evaluates the QuerySet; only [start:stop] is allowed.",
        "::2",
    ),
    ("Book.objects.all()[-1]", "Negative indexing is not supported by QuerySets.", "-1"),
    ('Book.objects.all()["a"]', "Slice bounds and indexes must be integers.", '"a"'),
    (
        "Book",
        "Book is a model: start from one of its managers (objects), e.g. Book.objects.",
        "Book",
    ),
    ("Book.nope", "nope is not a manager of demo_app.Book (its managers: objects).", "nope"),
    ("Book.objects.filter", "filter must be called: .filter(...).", "filter"),
    ('"abc"', "The expression must start from a model's manager, e.g. Book.objects.", '"abc"'),
    (
        'Book(title="a")',
        "This makes a Book instance, not a QuerySet: start from one of its managers, e.g. "
        "Book.objects.",
        'Book(title="a")',
    ),
    (
        "os.system",
        "os is not allowed: names must be installed models (Author, Book, ContentType, Group, "
        "Permission, Profile, ...) or Q, F, Value, the aggregates, Prefetch and the database "
        "functions.",
        "os",
    ),
    ("demo_app.Nope.objects.all()", "demo_app has no model Nope.", "Nope"),
    (
        "Book.objects.published()",
        "published() is not a QuerySet method the playground allows (custom manager and "
        "QuerySet methods run your code).",
        ".published",
    ),
    ("Book.objects.afirst()", "afirst() is async: use first().", ".afirst"),
    (
        "Book.objects.iterator()",
        "iterator() is what running the expression does.",
        ".iterator",
    ),
    (
        "Book.objects.count().real",
        "real must be called: .real(...).",
        "real",
    ),
    (
        "Book.objects.count().bit_length()",
        "Nothing can follow count(): it does not return a QuerySet.",
        ".bit_length()",
    ),
    (
        "Book.objects.filter(pk__in=Book.objects.values('pk').count())",
        "count() runs a query: only the last call of the expression may.",
        ".count()",
    ),
    (
        "Book.objects.filter(author=Author.objects.all()[0])",
        "An index ([0]) runs a query: only the last call of the expression may.",
        "[0]",
    ),
    (
        "Book.objects.filter(title__in=[Book.objects.all()])",
        "A QuerySet is not allowed here: only as a filter value, in Subquery(), Exists(), "
        "Prefetch() or union().",
        "Book.objects.all()",
    ),
    (
        "Book.objects.filter(title=Value(Book.objects.all()))",
        "A QuerySet is not allowed here: only as a filter value, in Subquery(), Exists(), "
        "Prefetch() or union().",
        "Book.objects.all()",
    ),
    (
        'Book.objects.create(title=Book.objects.values("title")[:1])',
        "A QuerySet is not allowed here: only as a filter value, in Subquery(), Exists(), "
        "Prefetch() or union().",
        'Book.objects.values("title")[:1]',
    ),
    (
        'Book.objects.filter(price=Decimal(F("x")))',
        "F() is not allowed here: write a plain value.",
        'F("x")',
    ),
    ("Book.objects.filter(pk=Count)", "Count must be called: Count(...).", "Count"),
    (
        "Book.objects.filter(pk=[1][0])",
        "Indexing a value is not allowed; write the value.",
        "[1][0]",
    ),
    ('Book.objects.filter(pk=-"1")', "Only numbers and expressions can be negated.", '-"1"'),
    ("Book.objects.filter(pk=~1)", "~ negates Q objects and conditions only.", "~1"),
    (
        'Book.objects.prefetch_related("delete")',
        "'delete': 'delete' is not a relation of demo_app.Book; prefetch lookups must follow "
        "relations.",
        '"delete"',
    ),
    (
        'Book.objects.prefetch_related(Prefetch("tags", to_attr="__dict__"))',
        "to_attr '__dict__' is not allowed.",
        'Prefetch("tags", to_attr="__dict__")',
    ),
    ('Tag.objects.create(name="a", save=1)', "'save' is not a field of demo_app.Tag.", "save=1"),
    (
        'Tag.objects.get_or_create(name="a", defaults={"delete": 1})',
        "'delete' is not a field of demo_app.Tag.",
        '{"delete": 1}',
    ),
    (
        "Tag.objects.bulk_create([Tag(1)])",
        "Tag() takes keyword arguments only (field=value).",
        "1",
    ),
    ("Tag.objects.bulk_create([Tag(nope=1)])", "'nope' is not a field of demo_app.Tag.", "nope=1"),
    (
        "Book.objects.filter(nope=1)",
        "filter(): FieldError: Cannot resolve keyword 'nope' into field. Choices are: author, "
        "author_id, id, price, published, publisher, publisher_id, reviews, stores, tags, title",
        ".filter(nope=1)",
    ),
    (
        "Book.objects.all()[:5].filter(pk=1)",
        "filter(): TypeError: Cannot filter a query once a slice has been taken.",
        ".filter(pk=1)",
    ),
    (
        "Book.objects.filter(title=Lower())",
        "Lower(): TypeError: 'Lower' takes exactly 1 argument (0 given)",
        "Lower()",
    ),
    (
        "Book.objects.filter(published=timedelta(days=10**9))",
        "** is only allowed between Q objects or expressions (F, Value, aggregates...); "
        "arithmetic on plain values is not evaluated: write the result.",
        "10**9",
    ),
    (
        "Book.objects.filter(published=date(2020, 13, 1))",
        "date(): ValueError: month must be in 1..12",
        "date(2020, 13, 1)",
    ),
    ("Book.objects.filter(", "Not valid Python: '(' was never closed.", "("),
    ("", "Type a QuerySet expression, e.g. Book.objects.all().", ""),
]


@pytest.mark.parametrize(("text", "message", "pointed"), REFUSALS)
def test_refusals_say_why_and_point_at_the_part(text, message, pointed):
    assert refused(text) == (message, pointed)


def test_an_ambiguous_model_name_asks_for_its_app():
    assert refused("Book.objects.all()", app=None) == (
        "Book is ambiguous: write demo_app.Book or testapp.Book.",
        "Book",
    )
    expression = parse("demo_app.Book.objects.all()")
    assert expression.model is Book
    assert parse("testapp.Book.objects.all()").model is testapp.Book
    assert parse("Publisher.objects.all()").model is Publisher  # unique: no app needed


def test_an_app_label_alone_is_not_a_model():
    assert refused("demo_app.objects.all()", app=None) == (
        "demo_app has no model objects.",
        "objects",
    )


def test_limits():
    assert refused("Book.objects.all()" + " " * MAX_LENGTH) == (
        f"The expression is {MAX_LENGTH + 18:,} characters long; at most {MAX_LENGTH:,} "
        "are accepted.",
        " " * 18,
    )
    message, _ = refused("Book.objects.filter(pk=" + "-" * (MAX_DEPTH + 5) + "1)")
    assert message == f"The expression is nested more than {MAX_DEPTH} levels deep."
    message, _ = refused("Book.objects.filter(pk__in=[" + "1," * MAX_NODES + "])")
    assert message == f"The expression has more than {MAX_NODES} parts; make it smaller."
    message, pointed = refused("Book.objects" + ".all()" * (MAX_CALLS + 1))
    assert (message, pointed) == (
        f"More than {MAX_CALLS} calls; make the expression smaller.",
        ".all()",
    )
    message, _ = refused("(" * 300 + "1" + ")" * 300)
    assert message == "Not valid Python: too many nested parentheses."


def test_null_bytes_and_non_ascii():
    assert refused("Book.objects.all()\x00")[0].startswith("Not valid Python: ")
    # Offsets are characters, not UTF-8 bytes.
    assert refused('Book.objects.filter(title="é", nope=1)')[1] == '.filter(title="é", nope=1)'
    assert refused('Book.objects.filter(title="é").nope()')[1] == ".nope"


def test_pointer_draws_carets_under_the_fault():
    with pytest.raises(PlaygroundError) as info:
        parse('Book.objects.filter(title="é").raw("x")', app="demo_app")
    assert info.value.pointer() == (
        'Book.objects.filter(title="é").raw("x")\n                              ^^^^'
    )
    with pytest.raises(PlaygroundError) as info:
        parse("Book.objects.filter(pk=1)\n    .order_by(nope)", app="demo_app")
    assert info.value.pointer() == "    .order_by(nope)\n              ^^^^"
    assert info.value.to_dict() == {
        "message": info.value.message,
        "start": 40,
        "end": 44,
        "line": 2,
        "column": 14,
    }


def test_a_long_line_is_shown_around_the_fault():
    text = f'Book.objects.filter(title="{"x" * 300}").raw("{"y" * 300}")'
    with pytest.raises(PlaygroundError) as info:
        parse(text, app="demo_app")
    line, carets = info.value.pointer().split("\n")
    assert line == "..." + "x" * 31 + '").raw("' + "y" * 61 + "..."
    assert carets == " " * (3 + 33) + "^^^^"


def test_parse_takes_text_only():
    with pytest.raises(TypeError):
        parse(b"Book.objects.all()")  # type: ignore[arg-type]


def test_building_never_queries():
    # No database access is even allowed here (no django_db mark): building a
    # nested QuerySet, a Subquery or Exists never touches it.
    parse(
        'Author.objects.filter(Exists(Book.objects.filter(author=OuterRef("pk"))), '
        'pk__in=Book.objects.values("author")).annotate(first=Subquery('
        'Book.objects.filter(author=OuterRef("pk")).values("title")[:1]))',
        app="demo_app",
    )


# What is built ---------------------------------------------------------------------


def sql(queryset: Any) -> tuple[str, tuple[Any, ...]]:
    return queryset.query.get_compiler(connection=connections["default"]).as_sql()


BUILT = [
    (
        'Book.objects.filter(author__name__startswith="A").select_related("author")'
        '.order_by("-published")[:10]',
        lambda: (
            Book.objects.filter(author__name__startswith="A")
            .select_related("author")
            .order_by("-published")[:10]
        ),
    ),
    ("Book.objects.all()", lambda: Book.objects.all()),
    ("Book.objects", lambda: Book.objects.all()),
    (
        'Book.objects.filter(Q(title="a") | ~Q(price__gte=Decimal("9.5")), published__year=2020)',
        lambda: Book.objects.filter(
            Q(title="a") | ~Q(price__gte=Decimal("9.5")), published__year=2020
        ),
    ),
    (
        "Book.objects.exclude(pk__in=[1, 2, -3]).filter(published__gte=date(2020, 1, 31))",
        lambda: Book.objects.exclude(pk__in=[1, 2, -3]).filter(
            published__gte=datetime.date(2020, 1, 31)
        ),
    ),
    (
        'Author.objects.annotate(n=Count("books", distinct=True), total=Coalesce(Sum('
        '"books__price"), Value(Decimal("0")))).filter(n__gt=1)'
        '.order_by(F("total").desc(nulls_last=True))',
        lambda: (
            Author.objects.annotate(
                n=Count("books", distinct=True),
                total=Coalesce(Sum("books__price"), Value(Decimal("0"))),
            )
            .filter(n__gt=1)
            .order_by(F("total").desc(nulls_last=True))
        ),
    ),
    (
        'Book.objects.annotate(double=ExpressionWrapper(F("price") * 2 + 1, '
        "output_field=IntegerField()))",
        lambda: Book.objects.annotate(
            double=ExpressionWrapper(F("price") * 2 + 1, output_field=IntegerField())
        ),
    ),
    (
        'Author.objects.filter(Exists(Book.objects.filter(author=OuterRef("pk"), '
        'price__lt=5))).annotate(first=Subquery(Book.objects.filter(author=OuterRef("pk"))'
        '.order_by("published").values("title")[:1]))',
        lambda: Author.objects.filter(
            Exists(Book.objects.filter(author=OuterRef("pk"), price__lt=5))
        ).annotate(
            first=Subquery(
                Book.objects.filter(author=OuterRef("pk"))
                .order_by("published")
                .values("title")[:1]
            )
        ),
    ),
    (
        'Tag.objects.filter(name="a") | Tag.objects.filter(name__startswith="b")',
        lambda: Tag.objects.filter(name="a") | Tag.objects.filter(name__startswith="b"),
    ),
    (
        'Tag.objects.filter(name="a").union(Tag.objects.filter(name="b"), all=True)',
        lambda: Tag.objects.filter(name="a").union(Tag.objects.filter(name="b"), all=True),
    ),
    (
        'Book.objects.values("author__name").annotate(n=Count("id")).order_by("-n")[5:15]',
        lambda: Book.objects.values("author__name").annotate(n=Count("id")).order_by("-n")[5:15],
    ),
    (
        'Book.objects.values_list("title", flat=True).distinct()',
        lambda: Book.objects.values_list("title", flat=True).distinct(),
    ),
    (
        'Review.objects.only("rating").filter(book__tags__name__in=("a", "b")).reverse()',
        lambda: Review.objects.only("rating").filter(book__tags__name__in=("a", "b")).reverse(),
    ),
    (
        'Book.objects.defer("title").select_related("author", "publisher")',
        lambda: Book.objects.defer("title").select_related("author", "publisher"),
    ),
    (
        'Book.objects.filter(title=Lower("title"), pk__in=Book.objects.values("pk")[:3])',
        lambda: Book.objects.filter(title=Lower("title"), pk__in=Book.objects.values("pk")[:3]),
    ),
    (
        'Book.objects.filter(author=Author(pk=3), price=-F("price"))',
        lambda: Book.objects.filter(author=Author(pk=3), price=-F("price")),
    ),
    ("Book.objects.none()", lambda: Book.objects.none()),
    (
        'Book.objects.dates("published", "month")',
        lambda: Book.objects.dates("published", "month"),
    ),
    (
        "Book.objects.filter(\n    price__lt=10,\n)\n.order_by('title')",
        lambda: Book.objects.filter(price__lt=10).order_by("title"),
    ),
]


@pytest.mark.parametrize(("text", "hand_written"), BUILT)
def test_the_queryset_built_is_the_one_written_by_hand(text, hand_written):
    expression = parse(text, app="demo_app")
    expected = hand_written()
    assert expression.terminal is None
    assert type(expression.queryset) is type(expected)
    if expected.query.is_empty():
        assert expression.queryset.query.is_empty()
        return
    assert sql(expression.queryset) == sql(expected)
    assert str(expression.queryset.query) == str(expected.query)


def test_the_parts_of_an_expression():
    text = 'Book.objects.filter(price__lt=10).order_by( "title" )[:5]'
    expression = parse(text, app="demo_app")
    assert (expression.model, expression.manager_name) == (Book, "objects")
    assert expression.manager is Book._meta.managers_map["objects"]
    assert (expression.root_code, expression.root_start, expression.root_end) == (
        "Book.objects",
        0,
        12,
    )
    assert [
        (call.method, call.kind, call.code, text[call.start : call.end], call.args, call.kwargs)
        for call in expression.calls
    ] == [
        (
            "filter",
            "chain",
            ".filter(price__lt=10)",
            ".filter(price__lt=10)",
            (),
            {"price__lt": 10},
        ),
        ("order_by", "chain", '.order_by("title")', '.order_by( "title" )', ("title",), {}),
        ("__getitem__", "chain", "[:5]", "[:5]", (slice(None, 5),), {}),
    ]
    assert expression.code == 'Book.objects.filter(price__lt=10).order_by("title")[:5]'
    assert expression.terminal is None
    assert expression.queryset is expression.calls[-1].queryset
    assert all(call.duration_ns > 0 for call in expression.calls)


@pytest.mark.parametrize(
    ("text", "method", "kind", "args", "kwargs"),
    [
        ("Book.objects.count()", "count", "evaluate", (), {}),
        ('Book.objects.get(title="a")', "get", "evaluate", (), {"title": "a"}),
        ("Book.objects.all()[3]", "__getitem__", "evaluate", (3,), {}),
        ('Book.objects.aggregate(Sum("price"))', "aggregate", "evaluate", (Sum("price"),), {}),
        ('Book.objects.update(title="a")', "update", "write", (), {"title": "a"}),
        ("Book.objects.filter(pk=1).delete()", "delete", "write", (), {}),
        (
            'Tag.objects.bulk_create([Tag(name="a")], batch_size=10)',
            "bulk_create",
            "write",
            None,
            {"batch_size": 10},
        ),
    ],
)
def test_a_terminal_call_is_recorded_not_made(text, method, kind, args, kwargs):
    terminal = parse(text, app="demo_app").terminal
    assert (terminal.method, terminal.kind, terminal.queryset) == (method, kind, None)
    if args is not None:
        assert terminal.args == args
    assert terminal.kwargs == kwargs
    assert terminal.code == text[text.index(terminal.code[:2]) :]


def test_model_instances_for_bulk_create():
    terminal = parse(
        'Tag.objects.bulk_create([Tag(name="a"), Tag(id=4, name="b")])', app="demo_app"
    ).terminal
    [tags] = terminal.args
    assert [(type(tag), tag.pk, tag.name, tag._state.adding) for tag in tags] == [
        (Tag, None, "a", True),
        (Tag, 4, "b", True),
    ]


def test_prefetch_lookups_follow_relations():
    expression = parse(
        'Author.objects.prefetch_related("books__tags", Prefetch("books", '
        'queryset=Book.objects.filter(price__lt=5), to_attr="cheap"))',
        app="demo_app",
    )
    [plain, prefetch] = expression.queryset._prefetch_related_lookups
    assert plain == "books__tags"
    assert (prefetch.prefetch_through, prefetch.to_attr) == ("books", "cheap")
    assert sql(prefetch.queryset) == sql(Book.objects.filter(price__lt=5))
    assert refused('Author.objects.prefetch_related("books__title")')[0] == (
        "'books__title': 'title' is not a relation of demo_app.Book; prefetch lookups must "
        "follow relations."
    )
